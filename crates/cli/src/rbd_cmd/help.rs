//! `rbd-rs help COMMAND` / `rbd-rs COMMAND --help`: the usage of one command, so
//! scripts that probe the help text before using a feature find the commands and
//! options this tool has (the layout follows rbd's: `usage: rbd ...`, a blank line,
//! the description). ceph: src/tools/rbd/Shell.cc (print_action_help).

/// (command words, usage arguments, description).
const COMMANDS: &[(&str, &str, &str)] = &[
    ("bench", "--io-type <io-type> [--io-size <io-size>] [--io-threads <io-threads>] [--io-total <io-total>] [--io-pattern <io-pattern>] [--rw-mix-read <rw-mix-read>] <image-spec>", "Simple benchmark."),
    ("children", "[--image-id <image-id>] [--all] [--descendants] [--format <format>] [--pretty-format] <image-or-snap-spec>", "Display children of an image or its snapshot."),
    ("clone", "[--rbd-default-clone-format <1|2|auto>] [--image-feature <image-feature>] <source-snap-spec> <dest-image-spec>", "Clone a snapshot into a CoW child image."),
    ("config image get", "<image-spec> <key>", "Get an image-level configuration override."),
    ("config image list", "[--format <format>] [--pretty-format] <image-spec>", "List image-level configuration overrides."),
    ("config image remove", "<image-spec> <key>", "Remove an image-level configuration override."),
    ("config image set", "<image-spec> <key> <value>", "Set an image-level configuration override."),
    ("config global get", "<config-entity> <key>", "Get a global-level configuration override."),
    ("config global list", "[--format <format>] [--pretty-format] <config-entity>", "List global-level configuration overrides."),
    ("config global remove", "<config-entity> <key>", "Remove a global-level configuration override."),
    ("config global set", "<config-entity> <key> <value>", "Set a global-level configuration override."),
    ("config pool get", "<pool-name> <key>", "Get a pool-level configuration override."),
    ("config pool list", "[--format <format>] [--pretty-format] <pool-name>", "List pool-level configuration overrides."),
    ("config pool remove", "<pool-name> <key>", "Remove a pool-level configuration override."),
    ("config pool set", "<pool-name> <key> <value>", "Set a pool-level configuration override."),
    ("copy", "[--order <order>] [--object-size <object-size>] [--image-feature <image-feature>] [--image-shared] [--stripe-unit <stripe-unit>] [--stripe-count <stripe-count>] [--data-pool <data-pool>] [--sparse-size <sparse-size>] [--no-progress] <source-image-or-snap-spec> <dest-image-spec>", "Copy src image to dest."),
    ("create", "[--thick-provision] --size <size> [--no-progress] [--image-feature <image-feature>] [--order <order>] [--object-size <object-size>] [--stripe-unit <stripe-unit>] [--stripe-count <stripe-count>] [--data-pool <data-pool>] <image-spec>", "Create an empty image."),
    ("deep copy", "[--order <order>] [--object-size <object-size>] [--image-feature <image-feature>] [--image-shared] [--stripe-unit <stripe-unit>] [--stripe-count <stripe-count>] [--data-pool <data-pool>] [--flatten] [--no-progress] <source-image-or-snap-spec> <dest-image-spec>", "Deep copy src image to dest."),
    ("device list", "[--format <format>] [--pretty-format]", "List mapped rbd images."),
    ("device map", "[--read-only] [--exclusive] [--options <options>] <image-or-snap-spec>", "Map an image to a block device (FUSE file + loop device)."),
    ("device unmap", "<image-or-snap-or-device-spec>", "Unmap a rbd device."),
    ("diff", "[--from-snap <from-snap>] [--whole-object] [--format <format>] [--pretty-format] <image-or-snap-spec>", "Print extents that differ since a previous snap, or image creation."),
    ("disk-usage", "[--from-snap <from-snap>] [--exact] [--merge-snapshots] [--format <format>] [--pretty-format] <image-or-snap-spec>", "Show disk usage stats for pool, image or snapshot."),
    ("export", "[--export-format <export-format>] [--no-progress] <source-image-or-snap-spec> <path-name>", "Export image to file."),
    ("export-diff", "[--from-snap <from-snap>] [--whole-object] [--no-progress] <source-image-or-snap-spec> <path-name>", "Export incremental diff to file."),
    ("feature disable", "<image-spec> <features> [<features> ...]", "Disable the specified image feature."),
    ("feature enable", "<image-spec> <features> [<features> ...]", "Enable the specified image feature."),
    ("flatten", "[--no-progress] <image-spec>", "Fill clone with parent data (make it independent)."),
    ("group create", "<group-spec>", "Create a group."),
    ("group image add", "[--group-pool <group-pool>] [--group-namespace <group-namespace>] [--group <group>] [--image-pool <image-pool>] [--image-namespace <image-namespace>] [--image <image>] <group-spec> <image-spec>", "Add an image to a group."),
    ("group image list", "[--format <format>] [--pretty-format] <group-spec>", "List images in a group."),
    ("group image remove", "[--group-pool <group-pool>] [--group-namespace <group-namespace>] [--group <group>] [--image-pool <image-pool>] [--image-namespace <image-namespace>] [--image <image>] <group-spec> <image-spec>", "Remove an image from a group."),
    ("group list", "[--format <format>] [--pretty-format] <pool-spec>", "List rbd groups."),
    ("group remove", "<group-spec>", "Delete a group."),
    ("group rename", "<source-group-spec> <dest-group-spec>", "Rename a group within pool."),
    ("group snap create", "<group-snap-spec>", "Make a snapshot of a group."),
    ("group snap list", "[--format <format>] [--pretty-format] <group-spec>", "List snapshots of a group."),
    ("group snap remove", "<group-snap-spec>", "Remove a snapshot from a group."),
    ("group snap rename", "[--dest-snap <dest-snap>] <group-snap-spec> <dest-snap>", "Rename group's snapshot."),
    ("group snap rollback", "[--no-progress] <group-snap-spec>", "Rollback group to snapshot."),
    ("image-meta get", "<image-spec> <key>", "Image metadata get the value associated with the key."),
    ("image-meta list", "[--format <format>] [--pretty-format] <image-spec>", "Image metadata list keys with values."),
    ("image-meta remove", "<image-spec> <key>", "Image metadata remove the key and value associated."),
    ("image-meta set", "<image-spec> <key> <value>", "Image metadata set key with value."),
    ("import", "[--dest <dest>] [--image-feature <image-feature>] [--sparse-size <sparse-size>] [--no-progress] [--export-format <export-format>] <path-name> <dest-image-spec>", "Import image from file."),
    ("import-diff", "[--sparse-size <sparse-size>] [--no-progress] <path-name> <image-spec>", "Import an incremental diff."),
    ("info", "[--format <format>] [--pretty-format] <image-or-snap-spec>", "Show information about image size, striping, etc."),
    ("list", "[--long] [--format <format>] [--pretty-format] <pool-spec>", "List rbd images."),
    ("lock add", "[--shared <shared>] <image-spec> <lock-id>", "Take a lock on an image."),
    ("lock list", "[--format <format>] [--pretty-format] <image-spec>", "Show locks held on an image."),
    ("lock remove", "<image-spec> <lock-id> <locker>", "Release a lock on an image."),
    ("merge-diff", "[--path <path>] [--no-progress] <diff1-path> <diff2-path> <path-name>", "Merge two diff exports together."),
    ("namespace create", "<pool-spec>", "Create an RBD image namespace."),
    ("namespace list", "[--format <format>] [--pretty-format] <pool-spec>", "List RBD image namespaces."),
    ("namespace remove", "<pool-spec>", "Remove an RBD image namespace."),
    ("nbd serve", "[--bind <addr:port>] [--socket <path>] [--read-only] <image-or-snap-spec>", "Serve an image over NBD (rbd-rs only)."),
    ("object-map check", "<image-or-snap-spec>", "Verify the object map is correct."),
    ("object-map rebuild", "<image-or-snap-spec>", "Rebuild an invalid object map."),
    ("pool init", "[--force] <pool-name>", "Initialize pool for use by RBD."),
    ("pool stats", "[--format <format>] [--pretty-format] <pool-spec>", "Display pool statistics."),
    ("remove", "[--no-progress] <image-spec>", "Delete an image."),
    ("rename", "<source-image-spec> <dest-image-spec>", "Rename image within pool."),
    ("resize", "--size <size> [--allow-shrink] [--no-progress] <image-spec>", "Resize (expand or shrink) image."),
    ("snap create", "[--skip-quiesce] [--ignore-quiesce-error] [--no-progress] <snap-spec>", "Create a snapshot."),
    ("snap limit clear", "<image-spec>", "Remove snapshot limit."),
    ("snap limit set", "--limit <limit> <image-spec>", "Limit the number of snapshots."),
    ("snap list", "[--all] [--format <format>] [--pretty-format] <image-spec>", "Dump list of image snapshots."),
    ("snap protect", "<snap-spec>", "Prevent a snapshot from being deleted."),
    ("snap purge", "[--no-progress] <image-spec>", "Delete all unprotected snapshots."),
    ("snap remove", "[--snap-id <snap-id>] [--no-progress] [--force] <snap-spec>", "Delete a snapshot."),
    ("snap rename", "<source-snap-spec> <dest-snap-spec>", "Rename a snapshot."),
    ("snap rollback", "[--no-progress] <snap-spec>", "Rollback image to snapshot."),
    ("snap unprotect", "<snap-spec>", "Allow a snapshot to be deleted."),
    ("sparsify", "[--no-progress] [--sparse-size <sparse-size>] <image-spec>", "Reclaim space for zeroed image extents."),
    ("status", "[--format <format>] [--pretty-format] <image-spec>", "Show the status of this image."),
    ("trash list", "[--all] [--long] [--format <format>] [--pretty-format] <pool-spec>", "List trash images."),
    ("trash move", "[--expires-at <expires-at>] <image-spec>", "Move an image to the trash."),
    ("trash purge", "[--no-progress] [--expired-before <date>] [--threshold <threshold>] <pool-spec>", "Remove all expired images from trash."),
    ("trash remove", "[--image-id <image-id>] [--no-progress] [--force] <image-id>", "Remove an image from trash."),
    ("trash restore", "[--image-id <image-id>] [--image <image>] <image-id>", "Restore an image from trash."),
    ("watch", "<image-spec>", "Watch events on image."),
];

/// Aliases rbd accepts for command words.
const ALIASES: &[(&str, &str)] = &[
    ("ls", "list"),
    ("rm", "remove"),
    ("mv", "rename"),
    ("du", "disk-usage"),
    ("add", "create"),
    ("revert", "rollback"),
    ("cp", "copy"),
];

/// The help text of the command named by `words`, `None` if this tool lacks it.
pub fn command_help(words: &[String]) -> Option<String> {
    let raw = words.join(" ");
    if let Some((c, args, d)) = COMMANDS.iter().find(|(c, _, _)| *c == raw) {
        return Some(format!("usage: rbd {c} {args}\n\n{d}\n"));
    }
    let norm: Vec<&str> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let w = w.as_str();
            match (i, words.first().map(String::as_str), w) {
                // `trash mv` is trash move, top-level `mv` is rename
                (1, Some("trash"), "mv") => "move",
                (_, _, w) => ALIASES
                    .iter()
                    .find(|(a, _)| *a == w)
                    .map(|(_, c)| *c)
                    .unwrap_or(w),
            }
        })
        .collect();
    let name = norm.join(" ");
    COMMANDS
        .iter()
        .find(|(c, _, _)| *c == name)
        .map(|(c, args, d)| format!("usage: rbd {c} {args}\n\n{d}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(command_help(&w("trash mv"))
            .unwrap()
            .starts_with("usage: rbd trash move"));
        assert!(command_help(&w("mv"))
            .unwrap()
            .starts_with("usage: rbd rename"));
        assert!(command_help(&w("image-meta ls")).is_some());
        assert!(command_help(&w("lock add"))
            .unwrap()
            .starts_with("usage: rbd lock add"));
        assert!(command_help(&w("snap add"))
            .unwrap()
            .starts_with("usage: rbd snap create"));
        assert!(command_help(&w("deep cp"))
            .unwrap()
            .starts_with("usage: rbd deep copy"));
        assert!(command_help(&w("cp"))
            .unwrap()
            .starts_with("usage: rbd copy"));
        assert!(command_help(&w("group snap rm"))
            .unwrap()
            .starts_with("usage: rbd group snap remove"));
        assert!(command_help(&w("group frobnicate")).is_none());
    }
}
