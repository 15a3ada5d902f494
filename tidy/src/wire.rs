//! The wire fingerprint: serde formats of the RPC types, traced with
//! serde-reflection (deserialization tracing, non-human-readable like bincode),
//! rendered as a stable, Rust-like text, one container per block, and hashed
//! with SHA-256.
//!
//! The text records what bincode depends on: container and field order,
//! variant indexes, and every field's format. It also records field and
//! variant names, which bincode ignores but the JSON of a validation
//! statement (the bytes the validator signs) does not.
//!
//! serde-reflection keys containers by their bare name, so one generic type
//! instantiated twice (`Result<IssuedCertificate, _>` and `Result<CaChain, _>`
//! in one tarpc response enum) cannot be traced in one registry: each
//! response variant is traced on its own with [`WireTrace::variant`] and its
//! `Result` renamed after the variant.
//!
//! serde-reflection also explores every variant only of the enum it traces
//! (an enum reached inside a struct gets one variant per pass), so every enum
//! is listed with [`WireTrace::ty`]; [`WireTrace::render`] names one that is
//! not, rather than fingerprint half an enum.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde_reflection::{
    ContainerFormat, Error as TraceError, Format, Named, Registry, Samples, Tracer, TracerConfig,
    VariantFormat,
};

/// Why a type could not be traced.
#[derive(Debug)]
pub enum WireError {
    /// serde-reflection refused the type (custom impl, untagged enum …).
    Trace {
        /// What was being traced.
        what: String,
        /// serde-reflection's explanation.
        error: TraceError,
    },
    /// An enum was reached but not traced on its own, so some of its
    /// variants are missing.
    UntracedEnum(String),
    /// Two traced types share a container name but differ.
    Conflict(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Trace { what, error } => write!(f, "cannot trace {what}: {error}"),
            Self::UntracedEnum(name) => write!(
                f,
                "enum {name} is only partly traced: list it with `t.ty::<{name}>()` in `wire_types` \
                 (serde-reflection explores an enum fully only when it is traced on its own)"
            ),
            Self::Conflict(name) => write!(
                f,
                "two different containers are named {name}: rename one (#[serde(rename)]) or trace it with WireTrace::variant"
            ),
        }
    }
}

impl std::error::Error for WireError {}

type TraceFn = fn(&mut Tracer, &Samples) -> Result<Format, TraceError>;

fn trace_one<T: DeserializeOwned>(
    tracer: &mut Tracer,
    samples: &Samples,
) -> Result<Format, TraceError> {
    tracer.trace_type::<T>(samples).map(|(format, _)| format)
}

/// The list of traced types; [`WireTrace::render`] runs the trace.
#[derive(Debug, Default)]
pub struct WireTrace {
    types: Vec<(&'static str, TraceFn)>,
    variants: Vec<(String, TraceFn)>,
}

impl WireTrace {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Traces `T` and every container it reaches. Every enum must be listed
    /// itself (serde-reflection explores all variants only of the enum being
    /// traced); [`WireTrace::render`] names one that is not.
    pub fn ty<T: DeserializeOwned>(&mut self) {
        self.types
            .push((std::any::type_name::<T>(), trace_one::<T>));
    }

    /// Traces the payload of one tuple variant, given its constructor (for
    /// a tarpc response enum: `SignerRpcResponse::IssueCertificate`), in a
    /// tracer of its own, and records it under `label` instead of its own
    /// container name.
    pub fn variant<T: DeserializeOwned, E>(&mut self, label: &str, _constructor: fn(T) -> E) {
        self.variants.push((label.to_owned(), trace_one::<T>));
    }

    /// A tracer that has traced every type of [`WireTrace::ty`].
    fn tracer_with_types(&self) -> Result<Tracer, WireError> {
        let samples = Samples::new();
        let mut tracer = Tracer::new(TracerConfig::default());
        for (what, trace) in &self.types {
            trace(&mut tracer, &samples).map_err(|error| WireError::Trace {
                what: (*what).to_owned(),
                error,
            })?;
        }
        Ok(tracer)
    }

    /// Runs the trace and renders the containers as text, sorted by name:
    /// the input of the fingerprint and the body of the checked-in file (so
    /// a review shows what changed).
    pub fn render(&self) -> Result<String, WireError> {
        let mut registry = complete_registry(self.tracer_with_types()?, "the listed types")?;
        for (label, trace) in &self.variants {
            let mut tracer = self.tracer_with_types()?;
            let format = trace(&mut tracer, &Samples::new()).map_err(|error| WireError::Trace {
                what: label.clone(),
                error,
            })?;
            let mut own = complete_registry(tracer, label)?;
            let container = match &format {
                Format::TypeName(name) => own
                    .remove(name)
                    .unwrap_or_else(|| ContainerFormat::NewTypeStruct(Box::new(format.clone()))),
                other => ContainerFormat::NewTypeStruct(Box::new(other.clone())),
            };
            own.insert(label.clone(), container);
            merge(&mut registry, own)?;
        }
        let mut out = String::new();
        for (name, container) in &registry {
            render_container(&mut out, name, container);
        }
        Ok(out)
    }
}

/// The tracer's registry, refused while an enum has variants left to find
/// (reported, or still holding serde-reflection's provisional indexes
/// counted down from `u32::MAX`).
fn complete_registry(tracer: Tracer, what: &str) -> Result<Registry, WireError> {
    let registry = match tracer.registry() {
        Ok(registry) => registry,
        Err(TraceError::MissingVariants(names)) => {
            return Err(WireError::UntracedEnum(names.join(", ")));
        }
        Err(error) => {
            return Err(WireError::Trace {
                what: what.to_owned(),
                error,
            });
        }
    };
    for (name, container) in &registry {
        if let ContainerFormat::Enum(variants) = container
            && variants.keys().any(|index| *index > u32::MAX - 65_536)
        {
            return Err(WireError::UntracedEnum(name.clone()));
        }
    }
    Ok(registry)
}

fn merge(registry: &mut Registry, other: Registry) -> Result<(), WireError> {
    for (name, container) in other {
        match registry.get(&name) {
            Some(existing) if *existing != container => return Err(WireError::Conflict(name)),
            Some(_) => {}
            None => {
                registry.insert(name, container);
            }
        }
    }
    Ok(())
}

fn render_container(out: &mut String, name: &str, container: &ContainerFormat) {
    // Writing to a String cannot fail.
    let _ = match container {
        ContainerFormat::UnitStruct => writeln!(out, "{name} = struct;"),
        ContainerFormat::NewTypeStruct(f) => writeln!(out, "{name} = struct({});", format(f)),
        ContainerFormat::TupleStruct(fs) => writeln!(out, "{name} = struct({});", list(fs)),
        ContainerFormat::Struct(fields) => {
            let _ = writeln!(out, "{name} = struct {{");
            for field in fields {
                let _ = writeln!(out, "    {}: {},", field.name, format(&field.value));
            }
            writeln!(out, "}}")
        }
        ContainerFormat::Enum(variants) => {
            let _ = writeln!(out, "{name} = enum {{");
            for (index, variant) in variants {
                let _ = writeln!(out, "    {index} {},", render_variant(variant));
            }
            writeln!(out, "}}")
        }
    };
}

fn render_variant(variant: &Named<VariantFormat>) -> String {
    let name = &variant.name;
    match &variant.value {
        VariantFormat::Unit => name.clone(),
        VariantFormat::NewType(f) => format!("{name}({})", format(f)),
        VariantFormat::Tuple(fs) => format!("{name}({})", list(fs)),
        VariantFormat::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name, format(&f.value)))
                .collect();
            if fields.is_empty() {
                format!("{name} {{}}")
            } else {
                format!("{name} {{ {} }}", fields.join(", "))
            }
        }
        VariantFormat::Variable(_) => format!("{name} <untraced>"),
    }
}

fn list(formats: &[Format]) -> String {
    formats.iter().map(format).collect::<Vec<_>>().join(", ")
}

fn format(f: &Format) -> String {
    match f {
        Format::Variable(_) => "<untraced>".to_owned(),
        Format::TypeName(name) => name.clone(),
        Format::Unit => "()".to_owned(),
        Format::Bool => "bool".to_owned(),
        Format::I8 => "i8".to_owned(),
        Format::I16 => "i16".to_owned(),
        Format::I32 => "i32".to_owned(),
        Format::I64 => "i64".to_owned(),
        Format::I128 => "i128".to_owned(),
        Format::U8 => "u8".to_owned(),
        Format::U16 => "u16".to_owned(),
        Format::U32 => "u32".to_owned(),
        Format::U64 => "u64".to_owned(),
        Format::U128 => "u128".to_owned(),
        Format::F32 => "f32".to_owned(),
        Format::F64 => "f64".to_owned(),
        Format::Char => "char".to_owned(),
        Format::Str => "str".to_owned(),
        Format::Bytes => "bytes".to_owned(),
        Format::Option(inner) => format!("Option<{}>", format(inner)),
        Format::Seq(inner) => format!("[{}]", format(inner)),
        Format::Map { key, value } => format!("Map<{}, {}>", format(key), format(value)),
        Format::Tuple(fs) => format!("({})", list(fs)),
        Format::TupleArray { content, size } => format!("[{}; {size}]", format(content)),
    }
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The checked-in fingerprint file: header lines `KEY=value`, then the
/// rendered formats after a blank line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FingerprintFile {
    /// `PROTOCOL_VERSION=` as recorded.
    pub protocol_version: u32,
    /// `sha256=` as recorded.
    pub sha256: String,
    /// The rendered formats as recorded.
    pub formats: String,
}

impl FingerprintFile {
    /// Builds the file for the current formats.
    pub fn new(protocol_version: u32, formats: String) -> Self {
        Self {
            protocol_version,
            sha256: sha256_hex(&formats),
            formats,
        }
    }

    /// Parses a file written by [`FingerprintFile::to_text`]; `#` lines are
    /// comments.
    pub fn parse(text: &str) -> Option<Self> {
        let (head, formats) = text.split_once("\n\n")?;
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in head.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line.split_once('=')?;
            fields.insert(key.trim(), value.trim());
        }
        Some(Self {
            protocol_version: fields.get("PROTOCOL_VERSION")?.parse().ok()?,
            sha256: (*fields.get("sha256")?).to_owned(),
            formats: formats.to_owned(),
        })
    }

    /// The file's text; `regenerate` is the command named in its header.
    pub fn to_text(&self, regenerate: &str) -> String {
        format!(
            "# The serde formats of the RPC wire types (shared-proto), traced by the tidy test.\n\
             # Do not edit: bump shared_proto::PROTOCOL_VERSION, then run\n\
             #   {regenerate}\n\
             PROTOCOL_VERSION={}\nsha256={}\n\n{}",
            self.protocol_version, self.sha256, self.formats
        )
    }
}

/// The first line where two renderings differ, for failure messages.
pub fn first_difference(recorded: &str, current: &str) -> Option<String> {
    let mut a = recorded.lines();
    let mut b = current.lines();
    for n in 1.. {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => {}
            (x, y) => {
                return Some(format!(
                    "line {n} of the formats: recorded {:?}, now {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        A,
        B(u8),
        C { x: Option<String> },
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        kind: Kind,
        bytes: Vec<u8>,
        pair: (u16, [u8; 4]),
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Response {
        One(Result<Outer, String>),
        Two(Result<u64, String>),
    }

    #[test]
    fn nested_enums_must_be_listed() {
        let mut t = WireTrace::new();
        t.ty::<Outer>();
        let err = t.render().expect_err("Kind is not listed");
        assert!(err.to_string().contains("enum Kind"), "{err}");
        t.ty::<Kind>();
        let text = t.render().expect("trace");
        assert!(text.contains("    2 C { x: Option<str> },"), "{text}");
        assert!(
            text.contains("    pair: (u16, [u8; 4]),"),
            "arrays are tuples in serde: {text}"
        );
    }

    #[test]
    fn generic_variants_are_traced_apart() {
        let mut t = WireTrace::new();
        t.ty::<Kind>();
        t.ty::<Response>();
        assert!(t.render().is_err(), "Result twice in one registry");
        let mut t = WireTrace::new();
        t.ty::<Kind>();
        t.variant("Response::One", Response::One);
        t.variant("Response::Two", Response::Two);
        let text = t.render().expect("trace");
        assert!(
            text.contains("Response::One = enum {\n    0 Ok(Outer),"),
            "{text}"
        );
        assert!(
            text.contains("Response::Two = enum {\n    0 Ok(u64),"),
            "{text}"
        );
    }

    #[test]
    fn file_round_trip() {
        let file = FingerprintFile::new(7, "A = struct;\n".to_owned());
        let text = file.to_text("cmd");
        assert_eq!(FingerprintFile::parse(&text), Some(file));
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
