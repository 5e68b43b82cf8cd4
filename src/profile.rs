//! A profile: one person's Confab on this computer. The desktop app and `confab headless`
//! share it: `--profile NAME` picks another, so two people (or a person and a bot) can use
//! one computer. It is a folder in the user's data directory (`$XDG_DATA_HOME/confab`, or
//! `confab-NAME`), holding the app's settings and history (eframe's storage) and the
//! identity (`identity.pem`, [`confab_call::Identity`]).

use std::path::PathBuf;

use confab_call::{Identity, IdentityError};

/// The identity file's name in the profile's folder.
pub const IDENTITY_FILE: &str = "identity.pem";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    app_id: String,
}

impl Profile {
    /// The default profile (`None`) or the one named.
    pub fn new(name: Option<&str>) -> Profile {
        let app_id = match name {
            Some(name) => format!("confab-{name}"),
            None => "confab".to_owned(),
        };
        Profile { app_id }
    }

    /// The window's app id, which also names the folder.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The profile's folder (none where the platform has no data directory).
    pub fn dir(&self) -> Option<PathBuf> {
        eframe::storage_dir(&self.app_id)
    }

    /// Where the identity is kept.
    pub fn identity_path(&self) -> Option<PathBuf> {
        self.dir().map(|dir| dir.join(IDENTITY_FILE))
    }

    /// The profile's identity, made on first use. Where none can be kept (no data
    /// directory, or one that cannot be written), a new one for this run: safety codes then
    /// change from run to run. A file that is there but damaged is an error: replacing it
    /// would change the identity behind the user's back.
    pub fn identity(&self) -> Result<Identity, IdentityError> {
        let Some(path) = self.identity_path() else {
            tracing::warn!("no data directory: this run's identity is not kept");
            return Identity::generate();
        };
        match Identity::load_or_create(&path) {
            Err(err @ IdentityError::Write { .. }) => {
                tracing::warn!("{err}: this run's identity is not kept");
                Identity::generate()
            }
            loaded => loaded,
        }
    }
}
