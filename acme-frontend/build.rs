//! Rebuild when migrations change (`embed_migrations!` does not notice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-postgres");
}
