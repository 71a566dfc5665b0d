// Embedded migrations (`sqlx::migrate!`) are read at compile time; a new .sql file must trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
