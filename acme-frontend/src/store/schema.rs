//! diesel table definitions mirroring `migrations/`.
#![allow(missing_docs)]

diesel::table! {
    accounts (id) {
        id -> Text,
        status -> Text,
        contact -> Text,
        jwk -> Text,
        jwk_thumbprint -> Text,
        tos_agreed -> Bool,
        created -> BigInt,
        updated -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        account_id -> Text,
        status -> Text,
        expires -> BigInt,
        identifiers -> Text,
        not_before -> Nullable<BigInt>,
        not_after -> Nullable<BigInt>,
        error -> Nullable<Text>,
        csr -> Nullable<Binary>,
        certificate_id -> Nullable<Text>,
        created -> BigInt,
        updated -> BigInt,
        profile -> Nullable<Text>,
        replaces -> Nullable<Text>,
        replaces_certificate -> Nullable<Text>,
    }
}

diesel::table! {
    authorizations (id) {
        id -> Text,
        account_id -> Text,
        status -> Text,
        identifier_type -> Text,
        identifier_value -> Text,
        wildcard -> Bool,
        token -> Text,
        expires -> BigInt,
        error -> Nullable<Text>,
        created -> BigInt,
        updated -> BigInt,
        statement -> Nullable<Text>,
        subdomain_auth_allowed -> Bool,
    }
}

diesel::table! {
    order_authorizations (order_id, authz_id) {
        order_id -> Text,
        authz_id -> Text,
        position -> Integer,
    }
}

diesel::table! {
    challenges (id) {
        id -> Text,
        authz_id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        status -> Text,
        validated -> Nullable<BigInt>,
        error -> Nullable<Text>,
        validation_record -> Nullable<Text>,
        created -> BigInt,
        updated -> BigInt,
        response -> Nullable<Text>,
    }
}

diesel::table! {
    certificates (id) {
        id -> Text,
        order_id -> Text,
        account_id -> Text,
        serial_number -> Text,
        status -> Text,
        der -> Binary,
        pem -> Text,
        not_before -> BigInt,
        not_after -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revocation_reason -> Nullable<Integer>,
        created -> BigInt,
        mtc_log_index -> Nullable<BigInt>,
    }
}

diesel::joinable!(orders -> accounts (account_id));
diesel::joinable!(authorizations -> accounts (account_id));
diesel::joinable!(order_authorizations -> orders (order_id));
diesel::joinable!(order_authorizations -> authorizations (authz_id));
diesel::joinable!(challenges -> authorizations (authz_id));
diesel::joinable!(certificates -> orders (order_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    orders,
    authorizations,
    order_authorizations,
    challenges,
    certificates,
);

diesel::table! {
    eab_keys (kid) {
        kid -> Text,
        hmac_key -> Binary,
        account_id -> Nullable<Text>,
        created -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(eab_keys, accounts);

diesel::table! {
    replacements (certificate_id) {
        certificate_id -> Text,
        order_id -> Text,
        created -> BigInt,
    }
}

diesel::table! {
    rate_limit_buckets (limit_name, bucket_key) {
        limit_name -> Text,
        bucket_key -> Text,
        tat -> BigInt,
    }
}

diesel::table! {
    renewal_marks (certificate_id) {
        certificate_id -> Text,
        marked_at -> BigInt,
        explanation_url -> Nullable<Text>,
    }
}

diesel::joinable!(replacements -> certificates (certificate_id));
diesel::joinable!(renewal_marks -> certificates (certificate_id));
diesel::allow_tables_to_appear_in_same_query!(replacements, renewal_marks, certificates);

diesel::table! {
    paused_identifiers (account_id, identifier_type, identifier_value) {
        account_id -> Text,
        identifier_type -> Text,
        identifier_value -> Text,
        paused_at -> BigInt,
    }
}

diesel::table! {
    star_orders (order_id) {
        order_id -> Text,
        start_date -> Nullable<BigInt>,
        end_date -> BigInt,
        lifetime -> BigInt,
        lifetime_adjust -> BigInt,
        allow_certificate_get -> Bool,
        csr -> Nullable<Binary>,
        next_issue -> Nullable<BigInt>,
        reissue_start -> Nullable<BigInt>,
        canceled_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(star_orders -> orders (order_id));
diesel::allow_tables_to_appear_in_same_query!(star_orders, orders);

diesel::table! {
    account_keys (account_id, jwk_thumbprint) {
        account_id -> Text,
        jwk_thumbprint -> Text,
        added -> BigInt,
        retired -> Nullable<BigInt>,
    }
}

diesel::joinable!(account_keys -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(account_keys, accounts);

diesel::table! {
    persist_hashes (account_id, hashed_uri) {
        account_id -> Text,
        hashed_uri -> Text,
        domain -> Text,
        jwk_thumbprint -> Text,
        validated -> BigInt,
    }
}

diesel::joinable!(persist_hashes -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(persist_hashes, accounts);

diesel::table! {
    fleet_secrets (name) {
        name -> Text,
        value -> Binary,
    }
}

diesel::table! {
    used_nonces (nonce) {
        nonce -> Binary,
        expires -> BigInt,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_ms -> BigInt,
    }
}

diesel::table! {
    current_crl (id) {
        id -> Integer,
        der -> Binary,
        number -> BigInt,
        this_update -> BigInt,
        next_update -> BigInt,
        mark_count -> BigInt,
        mark_latest -> BigInt,
    }
}
