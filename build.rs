// Migrations are embedded by `sqlx::migrate!`; rebuild when one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    swagger_ui::extract();
}

/// `/docs` must work without internet, so the viewer is compiled into the binary. Its files
/// come from Swagger UI's release archive as published on crates.io (utoipa-swagger-ui-vendored):
/// no download at build time. Only what the page loads is kept (about 1.6 MB; the archive's
/// dist folder with its other bundles and source maps is 11 MB).
mod swagger_ui {
    use std::io::{Cursor, Read};
    use std::path::PathBuf;

    /// Served by src/api/docs.rs under these names.
    const FILES: &[&str] = &["swagger-ui-bundle.js", "swagger-ui.css"];

    pub fn extract() {
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
            .join("swagger-ui");
        std::fs::create_dir_all(&out).expect("OUT_DIR is writable");
        let archive = Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED);
        let mut archive = zip::ZipArchive::new(archive).expect("the vendored archive is a zip");
        for name in FILES {
            let suffix = format!("/dist/{name}");
            let path = archive
                .file_names()
                .find(|path| path.ends_with(&suffix))
                .unwrap_or_else(|| panic!("{suffix} is not in the vendored Swagger UI"))
                .to_owned();
            let mut text = String::new();
            archive
                .by_name(&path)
                .expect("listed above")
                .read_to_string(&mut text)
                .expect("the file is UTF-8 text");
            // The source maps are left out, so their references go too: every URL the page
            // names is one payoutd serves.
            let kept: Vec<&str> = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//# sourceMappingURL="))
                .filter(|line| !line.trim_start().starts_with("/*# sourceMappingURL="))
                .collect();
            std::fs::write(out.join(name), kept.join("\n")).expect("OUT_DIR is writable");
        }
    }
}
