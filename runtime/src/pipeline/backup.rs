//! The `backup` stage (BAK-1 … BAK-5): before a different image overwrites
//! an existing target, copy the target to the name the `backup` template
//! gives: a tag in the target repository, or a full reference when the name
//! holds `:` or `/`. A failed backup only warns; a bad template fails the step.

use super::context::{Context, CopyOptions, Scope};
use super::copy::{ImageCopy, Names};
use super::error::BackupError;
use super::state::RunState;
use crate::client::Client;
use crate::config::StepSpec;
use crate::config::expand::backup_data;
use crate::reference::Reference;
use crate::template::CompiledTemplate;

/// Where the backup goes (BAK-2).
pub fn backup_reference(name: &str, target: &Reference) -> Result<Reference, BackupError> {
    if name.contains(':') || name.contains('/') {
        Reference::parse(name).map_err(|e| BackupError::Reference { name: name.to_string(), reason: e.to_string() })
    } else {
        Ok(target.with_tag(name))
    }
}

/// Saves the current target before it is overwritten.
pub async fn save(
    client: &Client,
    state: &RunState,
    spec: &StepSpec,
    template: &CompiledTemplate,
    target: &Reference,
) -> Result<(), BackupError> {
    let name = template.render(&backup_data(spec, target)).map_err(|e| {
        tracing::error!(original = %target.common_name(), "backup-template" = spec.options.backup, error = %e, "Failed to expand backup template");
        BackupError::Template(e.to_string())
    })?;
    let name = name.trim();
    let backup = backup_reference(name, target).inspect_err(|e| {
        tracing::error!(original = %target.common_name(), template = spec.options.backup, backup = name, error = %e, "Failed to parse backup reference");
    })?;
    tracing::info!(original = %target.common_name(), backup = %backup.common_name(), "Saving backup");
    let result = async {
        let current = client.manifest_get(target).await?;
        client.begin(&backup);
        // BAK-3: the image alone, no referrers or digest tags.
        let options = CopyOptions::default();
        let scope = Scope::new(target.clone(), backup.clone(), None, None, Vec::new());
        let ctx = Context { client, state, options: &options, scope: &scope };
        let names = Names { source: target.original.clone(), target: backup.original.clone() };
        let copied = ImageCopy::new(&ctx, &current.digest)
            .copy_image(&target.with_digest(&current.digest), &backup, &current, &names)
            .await;
        let _ = client.close(&backup).await;
        copied
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(original = %target.common_name(), template = spec.options.backup, backup = %backup.common_name(), error = %e, "Failed to backup existing image");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_references_bak_2() {
        let target = Reference::parse("registry:5000/app:latest").unwrap();
        assert_eq!(backup_reference("old", &target).unwrap().common_name(), "registry:5000/app:old");
        assert_eq!(
            backup_reference("registry:5000/backups:latest", &target).unwrap().common_name(),
            "registry:5000/backups:latest"
        );
        // A name with ':' is a full reference, even a timestamp (regsync's quirk).
        assert!(backup_reference("2024-01-01T00:00:00", &target).is_err());
    }
}
