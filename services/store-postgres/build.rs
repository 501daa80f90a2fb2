// sqlx::migrate! embeds the migrations: build again when one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
