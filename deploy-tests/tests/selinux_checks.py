"""Checks a linked binary SELinux policy against Akāmu's isolation rules.

Usage: python3 selinux_checks.py POLICY_FILE

Run by deploy-tests/tests/selinux.rs with the interpreter setools' own
`sesearch` uses. Prints one line per violation, `CHECK-ID: rule`, and exits
1 if there is any, 2 if the policy lacks an Akāmu type (a check over a
missing type would pass vacuously), 0 otherwise.

Rules are matched through attributes (a rule on `domain` counts for
akamu_frontend_t) and conditional rules count whatever their boolean's
default: a boolean an admin flips must not open a hole either.
"""

import sys

import setools

OURS = [
    "akamu_frontend_t", "akamu_signer_t", "akamu_validator_t",
    "akamu_frontend_exec_t", "akamu_signer_exec_t", "akamu_validator_exec_t",
    "akamu_conf_t", "akamu_key_t", "akamu_frontend_tls_t", "akamu_db_t",
    "akamu_signer_var_lib_t", "akamu_audit_t", "akamu_validator_var_lib_t",
    "akamu_var_run_t", "akamu_signer_var_run_t", "akamu_validator_var_run_t",
    "akamu_signer_port_t", "akamu_perspective_port_t",
]

READ = {"read", "map", "execute"}
MODIFY = {"write", "append", "create", "setattr", "unlink", "rename", "link"}
NET_CLASSES = {
    "tcp_socket", "udp_socket", "rawip_socket", "sctp_socket", "icmp_socket",
    "dccp_socket", "packet_socket",
}
NET_OWN = {"create", "bind", "connect", "listen", "accept", "name_bind",
           "name_connect", "node_bind"}

# (check id, source domains, target type, classes or None for all, perms)
DENY = [
    ("frontend-reads-key", ["akamu_frontend_t"], "akamu_key_t", None, READ),
    ("validator-reads-key", ["akamu_validator_t"], "akamu_key_t", None, READ),
    ("validator-reads-db", ["akamu_validator_t"], "akamu_db_t", None, READ),
    ("signer-reads-db", ["akamu_signer_t"], "akamu_db_t", None, READ),
    ("other-reads-statement-key", ["akamu_frontend_t", "akamu_signer_t"],
     "akamu_validator_var_lib_t", None, READ),
    ("other-reads-tls-key", ["akamu_signer_t", "akamu_validator_t"],
     "akamu_frontend_tls_t", None, READ),
    ("other-enters-signer", ["akamu_frontend_t", "akamu_validator_t"],
     "akamu_signer_t", {"process"}, {"transition", "dyntransition", "ptrace"}),
    ("other-replaces-signer-socket", ["akamu_frontend_t", "akamu_validator_t"],
     "akamu_signer_var_run_t", {"dir", "sock_file"},
     {"add_name", "remove_name", "create", "unlink", "rename", "setattr"}),
]


def main():
    policy = setools.SELinuxPolicy(sys.argv[1])
    names = {str(t) for t in policy.types()}
    missing = [t for t in OURS if t not in names]
    if missing:
        print("policy lacks " + ", ".join(missing))
        return 2

    # A rule names a type directly or through one of its attributes. One pass
    # over the allow rules keeps those that touch an Akāmu type (a query per
    # check would walk all ~100,000 rules each time).
    names_of = {t: {t} | {str(a) for a in policy.lookup_type(t).attributes()}
                for t in OURS}
    touching = set().union(*names_of.values())
    rules = [r for r in policy.terules()
             if r.ruletype == setools.TERuletype.allow
             and (str(r.source) in touching or str(r.target) in touching)]

    def matching(source=None, target=None, classes=None, perms=None):
        for r in rules:
            if source and str(r.source) not in names_of[source]:
                continue
            if target and str(r.target) not in names_of[target]:
                continue
            if classes and str(r.tclass) not in classes:
                continue
            if perms and not perms & set(r.perms):
                continue
            yield r

    found = []
    for check, sources, target, classes, perms in DENY:
        for source in sources:
            found += [(check, r) for r in matching(source, target, classes, perms)]

    # The signer owns one kind of network socket: a TCP socket of its own
    # that listens on its one port (akamu_signer_port_t) and serves what it
    # accepts. It never connects: no `connect` on any socket, no
    # `name_connect` on any port (signer-connects). Any other network
    # socket, or a bind to another port, is signer-network. Through
    # attributes (`daemon`, `domain`) it keeps read/write on a socket
    # inherited from init_t and recvfrom on peer labels, so the check is
    # about creating and using one of its own.
    for r in matching("akamu_signer_t", classes=NET_CLASSES, perms=NET_OWN):
        perms = set(r.perms)
        if perms & {"connect", "name_connect"}:
            found.append(("signer-connects", r))
        if str(r.tclass) != "tcp_socket":
            found.append(("signer-network", r))
        elif "name_bind" in perms and str(r.target) != "akamu_signer_port_t":
            found.append(("signer-network", r))
    found += [("signer-network", r) for r in rules
              if str(r.source) == "akamu_signer_t" and str(r.tclass) in NET_CLASSES
              and not NET_OWN & set(r.perms) and str(r.target) != "akamu_signer_t"]

    # The validator binds one kind of TCP port: a remote perspective's
    # (akamu_perspective_port_t). Any other TCP port is validator-binds.
    for r in matching("akamu_validator_t", classes={"tcp_socket"}, perms={"name_bind"}):
        if str(r.target) != "akamu_perspective_port_t":
            found.append(("validator-binds", r))

    # Nobody but the signer modifies the audit log, except the domains the
    # policy declares unconfined (init, kernel, dpkg, unconfined_t…), which
    # no SELinux module can restrict.
    unconfined = set()
    if "unconfined_domain_type" in {str(a) for a in policy.typeattributes()}:
        unconfined = {str(t) for t in
                      policy.lookup_typeattr("unconfined_domain_type").expand()}
    for r in matching(target="akamu_audit_t", classes={"file", "lnk_file", "dir"},
                      perms=MODIFY):
        writers = {str(t) for t in r.source.expand()}
        if writers - unconfined - {"akamu_signer_t"}:
            found.append(("other-writes-audit", r))

    for check, rule in found:
        print(f"{check}: {rule}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
