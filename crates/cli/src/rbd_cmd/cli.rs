//! The one description of `rbd-rs`'s command line: every command with its own options,
//! as clap derive types. Parsing (through the adapter in `args.rs`), `rbd-rs help
//! <command>`, `--help` and the shell completions are all generated from it, so a
//! command cannot accept an option its help does not show, nor show one it refuses.
//!
//! The tables follow `rbd help <command>` of Ceph 16.2 (command and option names,
//! short forms, aliases, positional names); see ceph: src/tools/rbd/ArgumentTypes.cc and
//! action/*.cc. Options rbd has but rbd-rs does not act on are described under the
//! [`NOT_IMPLEMENTED`] heading: they are recognised (a script passing them gets a clear
//! refusal, not `unrecognised option`) and refused before anything runs, so none is
//! silently ignored.
//!
//! The types are never built from the matches: the adapter reads clap's matches
//! generically into [`super::args::Args`], which the handlers already use, so only
//! the structure is read here.
#![allow(dead_code)]

use clap::{Args, Parser, Subcommand};

/// Help heading of the options rbd has that rbd-rs recognises but does not implement
/// (the adapter refuses them with EOPNOTSUPP).
pub const NOT_IMPLEMENTED: &str = "Not implemented by rbd-rs";

/// `rbd-rs`: the `rbd` tool's commands on the pure-Rust client.
#[derive(Parser)]
#[command(
    name = "rbd",
    bin_name = "rbd-rs",
    about = "Command-line interface for managing Ceph RBD images.",
    disable_help_subcommand = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Ceph's global options. `common_setup` and `take_globals` (rbd-rs.rs) consume them
/// before this parser runs, on every command; they are described here so help and the
/// completions know them.
#[derive(Args)]
struct Global {
    /// path to cluster configuration
    #[arg(short = 'c', long, global = true)]
    conf: Option<String>,
    /// cluster name
    #[arg(long, global = true)]
    cluster: Option<String>,
    /// client id (without 'client.' prefix)
    #[arg(long, visible_alias = "user", global = true)]
    id: Option<String>,
    /// client name
    #[arg(short = 'n', long, global = true)]
    name: Option<String>,
    /// monitor host
    #[arg(short = 'm', long, global = true)]
    mon_host: Option<String>,
    /// path to secret key
    #[arg(long, global = true)]
    keyfile: Option<String>,
    /// secret key
    #[arg(long, global = true)]
    key: Option<String>,
    /// path to keyring
    #[arg(short = 'k', long, global = true)]
    keyring: Option<String>,
    /// log to this file
    #[arg(long, global = true)]
    log_file: Option<String>,
    /// do not log to stderr
    #[arg(long, global = true)]
    no_log_to_stderr: bool,
    /// print this command's help
    #[arg(short = 'h', long, global = true)]
    help: bool,
}

/// `-p/--pool`, `--namespace`, `--image`: the options of an image spec.
#[derive(Args)]
struct ImageOpts {
    /// pool name
    #[arg(short = 'p', long)]
    pool: Option<String>,
    /// namespace name
    #[arg(long)]
    namespace: Option<String>,
    /// image name
    #[arg(long)]
    image: Option<String>,
}

/// An image spec's options and `--snap`.
#[derive(Args)]
struct SnapOpts {
    #[command(flatten)]
    image: ImageOpts,
    /// snapshot name
    #[arg(long)]
    snap: Option<String>,
}

/// `-p/--pool`, `--namespace`: the options of a pool spec.
#[derive(Args)]
struct PoolNsOpts {
    /// pool name
    #[arg(short = 'p', long)]
    pool: Option<String>,
    /// namespace name
    #[arg(long)]
    namespace: Option<String>,
}

/// `-p/--pool` alone.
#[derive(Args)]
struct PoolOpt {
    /// pool name
    #[arg(short = 'p', long)]
    pool: Option<String>,
}

/// `--image-id`: name the image by id (also an image in the trash).
#[derive(Args)]
struct ImageIdOpt {
    /// image id
    #[arg(long)]
    image_id: Option<String>,
}

/// The destination image's options.
#[derive(Args)]
struct DestOpts {
    /// destination pool name
    #[arg(long)]
    dest_pool: Option<String>,
    /// destination namespace name
    #[arg(long)]
    dest_namespace: Option<String>,
    /// destination image name
    #[arg(long)]
    dest: Option<String>,
}

/// `--format`, `--pretty-format`: on the commands that print structured output only.
#[derive(Args)]
struct FormatOpts {
    /// output format (plain, json, or xml) [default: plain]
    #[arg(long)]
    format: Option<String>,
    /// pretty formatting (json and xml)
    #[arg(long)]
    pretty_format: bool,
}

/// `--no-progress`.
#[derive(Args)]
struct ProgressOpt {
    /// disable progress output
    #[arg(long)]
    no_progress: bool,
}

/// `--image-format` (and the deprecated `--new-format`): create and import only.
#[derive(Args)]
struct ImageFormatOpts {
    /// image format [default: 2]
    #[arg(long)]
    image_format: Option<String>,
    /// use image format 2 (deprecated, as --image-format 2)
    #[arg(long, hide = true)]
    new_format: bool,
}

/// The journaling options, which rbd-rs does not implement (no journaling feature).
#[derive(Args)]
struct JournalOpts {
    /// number of active journal objects
    #[arg(long, help_heading = NOT_IMPLEMENTED)]
    journal_splay_width: Option<String>,
    #[arg(long, help_heading = NOT_IMPLEMENTED, help = "size of journal objects [4K <= size <= 64M]")]
    journal_object_size: Option<String>,
    /// pool for journal objects
    #[arg(long, help_heading = NOT_IMPLEMENTED)]
    journal_pool: Option<String>,
}

/// The layout and features of a new image (create, clone, copy, import).
#[derive(Args)]
struct CreateOpts {
    #[arg(long, hide = true, help = "object order [12 <= order <= 25]")]
    order: Option<String>,
    #[arg(long, help = "object size in B/K/M [4K <= object size <= 32M]")]
    object_size: Option<String>,
    /// image features [layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling]
    #[arg(long)]
    image_feature: Vec<String>,
    /// shared image
    #[arg(long)]
    image_shared: bool,
    /// stripe unit in B/K/M
    #[arg(long)]
    stripe_unit: Option<String>,
    /// stripe count
    #[arg(long)]
    stripe_count: Option<String>,
    /// data pool
    #[arg(long)]
    data_pool: Option<String>,
    /// mirror image mode [journal or snapshot]
    #[arg(long, help_heading = NOT_IMPLEMENTED)]
    mirror_image_mode: Option<String>,
    #[command(flatten)]
    journal: JournalOpts,
}

/// `--sparse-size`.
#[derive(Args)]
struct SparseOpt {
    /// sparse size in B/K/M [default: 4K]
    #[arg(long)]
    sparse_size: Option<String>,
}

/// `--path`: the file, instead of the positional path.
#[derive(Args)]
struct PathOpt {
    /// path name
    #[arg(long)]
    path: Option<String>,
}

/// `--from-snap`.
#[derive(Args)]
struct FromSnapOpt {
    /// snapshot starting point
    #[arg(long)]
    from_snap: Option<String>,
}

/// `--whole-object`.
#[derive(Args)]
struct WholeObjectOpt {
    /// compare whole object
    #[arg(long)]
    whole_object: bool,
}

/// A group spec's options.
#[derive(Args)]
struct GroupOpts {
    /// pool name
    #[arg(short = 'p', long)]
    pool: Option<String>,
    /// namespace name
    #[arg(long)]
    namespace: Option<String>,
    /// group name
    #[arg(long)]
    group: Option<String>,
}

/// The options of `group image add|remove`: the group's and the image's specs.
#[derive(Args)]
struct GroupImageOpts {
    /// group pool name
    #[arg(long)]
    group_pool: Option<String>,
    /// group namespace name
    #[arg(long)]
    group_namespace: Option<String>,
    /// group name
    #[arg(long)]
    group: Option<String>,
    /// image pool name
    #[arg(long)]
    image_pool: Option<String>,
    /// image namespace name
    #[arg(long)]
    image_namespace: Option<String>,
    /// image name
    #[arg(long)]
    image: Option<String>,
    /// pool name unless overridden
    #[arg(short = 'p', long)]
    pool: Option<String>,
}

/// `snap create` and `group snap create`: quiesce options. rbd-rs runs no quiesce
/// hooks, so skipping them or their errors changes nothing.
#[derive(Args)]
struct QuiesceOpts {
    /// do not run quiesce hooks
    #[arg(long)]
    skip_quiesce: bool,
    /// ignore quiesce hook error
    #[arg(long)]
    ignore_quiesce_error: bool,
}

/// Reef's options to open an encrypted image (rbd 18.2 flatten and resize); rbd-rs
/// has no encryption.
#[derive(Args)]
struct EncryptionOpts {
    /// encryption format (luks, luks1, luks2)
    #[arg(long, help_heading = NOT_IMPLEMENTED)]
    encryption_format: Vec<String>,
    /// path to file containing passphrase for unlocking the image
    #[arg(long, help_heading = NOT_IMPLEMENTED)]
    encryption_passphrase_file: Vec<String>,
}

/// One image spec positional.
#[derive(Args)]
struct ImageSpec {
    #[arg(
        value_name = "image-spec",
        help = "image specification (example: [<pool-name>/[<namespace>/]]<image-name>)"
    )]
    spec: Option<String>,
}

/// One image-or-snapshot spec positional.
#[derive(Args)]
struct ImageOrSnapSpec {
    #[arg(
        value_name = "image-or-snap-spec",
        help = "image or snapshot specification (example: [<pool-name>/[<namespace>/]]<image-name>[@<snap-name>])"
    )]
    spec: Option<String>,
}

/// One snapshot spec positional.
#[derive(Args)]
struct SnapSpec {
    #[arg(
        value_name = "snap-spec",
        help = "snapshot specification (example: [<pool-name>/[<namespace>/]]<image-name>@<snap-name>)"
    )]
    spec: Option<String>,
}

/// One pool spec positional.
#[derive(Args)]
struct PoolSpec {
    #[arg(
        value_name = "pool-spec",
        help = "pool specification (example: <pool-name>[/<namespace>])"
    )]
    spec: Option<String>,
}

/// One pool name positional.
#[derive(Args)]
struct PoolName {
    /// pool name
    #[arg(value_name = "pool-name")]
    pool_name: Option<String>,
}

/// One group spec positional.
#[derive(Args)]
struct GroupSpec {
    #[arg(
        value_name = "group-spec",
        help = "group specification (example: [<pool-name>/[<namespace>/]]<group-name>)"
    )]
    spec: Option<String>,
}

/// One group snapshot spec positional.
#[derive(Args)]
struct GroupSnapSpec {
    #[arg(
        value_name = "group-snap-spec",
        help = "group snapshot specification (example: [<pool-name>/[<namespace>/]]<group-name>@<snap-name>)"
    )]
    spec: Option<String>,
}

/// The top-level commands.
#[derive(Subcommand)]
enum Cmd {
    /// Simple benchmark.
    Bench(Bench),
    /// Simple write benchmark (deprecated: bench --io-type write).
    #[command(hide = true)]
    BenchWrite(Bench),
    /// Display children of an image or its snapshot.
    Children {
        #[command(flatten)]
        spec: SnapOpts,
        /// snapshot id
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        snap_id: Option<String>,
        #[command(flatten)]
        id: ImageIdOpt,
        /// list all children (include trash)
        #[arg(short = 'a', long)]
        all: bool,
        /// include all descendants
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        descendants: bool,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// Clone a snapshot into a CoW child image.
    Clone {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        dest: DestOpts,
        #[command(flatten)]
        create: CreateOpts,
        #[arg(
            value_name = "source-snap-spec",
            help = "source snapshot specification (example: [<pool-name>/[<namespace>/]]<image-name>@<snap-name>)"
        )]
        source: Option<String>,
        #[arg(
            value_name = "dest-image-spec",
            help = "destination image specification (example: [<pool-name>/[<namespace>/]]<image-name>)"
        )]
        dest_spec: Option<String>,
    },
    /// Configuration overrides (global, pool and image level).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Copy src image to dest.
    #[command(visible_alias = "cp")]
    Copy(Copy),
    /// Create an empty image.
    Create {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        image_format: ImageFormatOpts,
        #[command(flatten)]
        create: CreateOpts,
        /// fully allocate storage and zero image
        #[arg(long)]
        thick_provision: bool,
        /// image size (in M/G/T) [default: M]
        #[arg(short = 's', long)]
        size: Option<String>,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Deep copy.
    #[command(subcommand)]
    Deep(DeepCmd),
    /// Block devices.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Print extents that differ since a previous snap, or image creation.
    Diff {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        from: FromSnapOpt,
        #[command(flatten)]
        whole: WholeObjectOpt,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// Show disk usage stats for pool, image or snapshot.
    #[command(visible_alias = "du")]
    DiskUsage {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        from: FromSnapOpt,
        /// compute exact disk usage (slow)
        #[arg(long)]
        exact: bool,
        /// merge snapshot sizes with its image
        #[arg(long)]
        merge_snapshots: bool,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// Export image to file.
    Export {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        path: PathOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        /// format of image file (1 or 2)
        #[arg(long)]
        export_format: Option<String>,
        /// source image or snapshot specification
        #[arg(value_name = "source-image-or-snap-spec")]
        source: Option<String>,
        /// export file (or '-' for stdout)
        #[arg(value_name = "path-name")]
        path_name: Option<String>,
    },
    /// Export incremental diff to file.
    ExportDiff {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        path: PathOpt,
        #[command(flatten)]
        from: FromSnapOpt,
        /// compare whole object
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        whole_object: bool,
        #[command(flatten)]
        progress: ProgressOpt,
        /// source image or snapshot specification
        #[arg(value_name = "source-image-or-snap-spec")]
        source: Option<String>,
        /// export file (or '-' for stdout)
        #[arg(value_name = "path-name")]
        path_name: Option<String>,
    },
    /// Image features.
    #[command(subcommand)]
    Feature(FeatureCmd),
    /// Fill clone with parent data (make it independent).
    Flatten {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        encryption: EncryptionOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Consistency groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Image metadata.
    #[command(subcommand)]
    ImageMeta(MetaCmd),
    /// Import image from file.
    Import {
        #[command(flatten)]
        path: PathOpt,
        #[command(flatten)]
        dest: DestOpts,
        /// destination image spec (deprecated, as --dest)
        #[arg(long, hide = true)]
        image: Option<String>,
        /// destination pool name (deprecated, as --dest-pool)
        #[arg(short = 'p', long, hide = true)]
        pool: Option<String>,
        #[command(flatten)]
        image_format: ImageFormatOpts,
        #[command(flatten)]
        create: CreateOpts,
        #[command(flatten)]
        sparse: SparseOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        /// format of image file (1 or 2)
        #[arg(long)]
        export_format: Option<String>,
        /// format of image file, as --export-format
        #[arg(long, hide = true)]
        import_format: Option<String>,
        /// import file (or '-' for stdin)
        #[arg(value_name = "path-name")]
        path_name: Option<String>,
        /// destination image specification
        #[arg(value_name = "dest-image-spec")]
        dest_spec: Option<String>,
    },
    /// Import an incremental diff.
    ImportDiff {
        #[command(flatten)]
        path: PathOpt,
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        sparse: SparseOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        /// import file (or '-' for stdin)
        #[arg(value_name = "path-name")]
        path_name: Option<String>,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Show information about image size, striping, etc.
    Info {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// List rbd images.
    #[command(visible_alias = "ls")]
    List {
        /// long listing format
        #[arg(short = 'l', long)]
        long: bool,
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
    /// Advisory locks.
    #[command(subcommand)]
    Lock(LockCmd),
    /// Merge two diff exports together.
    MergeDiff {
        #[command(flatten)]
        path: PathOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        /// path to first diff (or '-' for stdin)
        #[arg(value_name = "diff1-path")]
        diff1: Option<String>,
        /// path to second diff
        #[arg(value_name = "diff2-path")]
        diff2: Option<String>,
        /// path to merged diff (or '-' for stdout)
        #[arg(value_name = "path-name")]
        path_name: Option<String>,
    },
    /// RBD image namespaces.
    #[command(subcommand)]
    Namespace(NamespaceCmd),
    /// NBD export (rbd-rs only).
    #[command(subcommand)]
    Nbd(NbdCmd),
    /// Object map.
    #[command(subcommand)]
    ObjectMap(ObjectMapCmd),
    /// Pools.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Delete an image.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Rename image within pool.
    #[command(visible_alias = "mv")]
    Rename {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        dest: DestOpts,
        /// source image specification
        #[arg(value_name = "source-image-spec")]
        source: Option<String>,
        /// destination image specification
        #[arg(value_name = "dest-image-spec")]
        dest_spec: Option<String>,
    },
    /// Resize (expand or shrink) image.
    Resize {
        #[command(flatten)]
        spec: ImageOpts,
        /// image size (in M/G/T) [default: M]
        #[arg(short = 's', long)]
        size: Option<String>,
        /// permit shrinking
        #[arg(long)]
        allow_shrink: bool,
        #[command(flatten)]
        encryption: EncryptionOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Snapshots.
    #[command(subcommand)]
    Snap(SnapCmd),
    /// Reclaim space for zeroed image extents.
    Sparsify {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        sparse: SparseOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Show the status of this image.
    Status {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// The trash.
    #[command(subcommand)]
    Trash(TrashCmd),
    /// Watch events on image.
    Watch {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Display help for a command.
    Help {
        /// the command's words
        #[arg(value_name = "command", allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completion {
        /// the shell
        #[arg(value_name = "shell")]
        shell: Option<String>,
    },
}

/// `bench` (and the hidden `bench-write`).
#[derive(Args)]
struct Bench {
    #[command(flatten)]
    spec: ImageOpts,
    #[arg(long, help = "IO size (in B/K/M/G) (< 4G) [default: 4K]")]
    io_size: Option<String>,
    /// ios in flight [default: 16]
    #[arg(long)]
    io_threads: Option<String>,
    /// total size for IO (in B/K/M/G/T) [default: 1G]
    #[arg(long)]
    io_total: Option<String>,
    /// IO pattern (rand, seq, or full-seq) [default: seq]
    #[arg(long)]
    io_pattern: Option<String>,
    #[arg(long, help = "read proportion in readwrite (<= 100) [default: 50]")]
    rw_mix_read: Option<String>,
    /// IO type (read, write, or readwrite(rw))
    #[arg(long)]
    io_type: Option<String>,
    #[command(flatten)]
    pos: ImageSpec,
}

/// `copy` and `deep copy`'s common part.
#[derive(Args)]
struct Copy {
    #[command(flatten)]
    spec: SnapOpts,
    #[command(flatten)]
    dest: DestOpts,
    #[command(flatten)]
    create: CreateOpts,
    #[command(flatten)]
    sparse: SparseOpt,
    #[command(flatten)]
    progress: ProgressOpt,
    /// source image or snapshot specification
    #[arg(value_name = "source-image-or-snap-spec")]
    source: Option<String>,
    /// destination image specification
    #[arg(value_name = "dest-image-spec")]
    dest_spec: Option<String>,
}

/// `deep copy`.
#[derive(Subcommand)]
enum DeepCmd {
    /// Deep copy src image to dest.
    #[command(visible_alias = "cp")]
    Copy {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        dest: DestOpts,
        #[command(flatten)]
        create: CreateOpts,
        /// fill clone with parent data (make it independent)
        #[arg(long)]
        flatten: bool,
        #[command(flatten)]
        progress: ProgressOpt,
        /// source image or snapshot specification
        #[arg(value_name = "source-image-or-snap-spec")]
        source: Option<String>,
        /// destination image specification
        #[arg(value_name = "dest-image-spec")]
        dest_spec: Option<String>,
    },
}

/// `config global|image|pool ...`.
#[derive(Subcommand)]
enum ConfigCmd {
    /// Global-level configuration overrides.
    #[command(subcommand)]
    Global(ConfigGlobal),
    /// Image-level configuration overrides.
    #[command(subcommand)]
    Image(ConfigImage),
    /// Pool-level configuration overrides.
    #[command(subcommand)]
    Pool(ConfigPool),
}

/// The config entity positional of `config global`.
#[derive(Args)]
struct ConfigEntity {
    #[arg(
        value_name = "config-entity",
        help = "config entity (global, client, client.<id>)"
    )]
    entity: Option<String>,
}

/// A config key positional.
#[derive(Args)]
struct ConfigKey {
    /// config key
    #[arg(value_name = "key")]
    key: Option<String>,
}

/// A config key and value positional.
#[derive(Args)]
struct ConfigKeyValue {
    /// config key
    #[arg(value_name = "key")]
    key: Option<String>,
    /// config value
    #[arg(value_name = "value")]
    value: Option<String>,
}

/// `config global ...`.
#[derive(Subcommand)]
enum ConfigGlobal {
    /// Get a global-level configuration override.
    Get {
        #[command(flatten)]
        entity: ConfigEntity,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// List global-level configuration overrides.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        entity: ConfigEntity,
    },
    /// Remove a global-level configuration override.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        entity: ConfigEntity,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// Set a global-level configuration override.
    Set {
        #[command(flatten)]
        entity: ConfigEntity,
        #[command(flatten)]
        kv: ConfigKeyValue,
    },
}

/// `config image ...`.
#[derive(Subcommand)]
enum ConfigImage {
    /// Get an image-level configuration override.
    Get {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// List image-level configuration overrides.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Remove an image-level configuration override.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// Set an image-level configuration override.
    Set {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        #[command(flatten)]
        kv: ConfigKeyValue,
    },
}

/// `config pool ...`.
#[derive(Subcommand)]
enum ConfigPool {
    /// Get a pool-level configuration override.
    Get {
        #[command(flatten)]
        pool: PoolName,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// List pool-level configuration overrides.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pool: PoolName,
    },
    /// Remove a pool-level configuration override.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        pool: PoolName,
        #[command(flatten)]
        key: ConfigKey,
    },
    /// Set a pool-level configuration override.
    Set {
        #[command(flatten)]
        pool: PoolName,
        #[command(flatten)]
        kv: ConfigKeyValue,
    },
}

/// `--device-type/-t`.
#[derive(Args)]
struct DeviceTypeOpt {
    /// device type [loop (FUSE file + loop device) or nbd]
    #[arg(short = 't', long)]
    device_type: Option<String>,
}

/// `device ...`.
#[derive(Subcommand)]
enum DeviceCmd {
    /// List mapped rbd images.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        device_type: DeviceTypeOpt,
        #[command(flatten)]
        format: FormatOpts,
    },
    /// Map an image to a block device (FUSE file + loop device, or nbd).
    Map {
        #[command(flatten)]
        device_type: DeviceTypeOpt,
        #[command(flatten)]
        spec: SnapOpts,
        /// snapshot id (rbd 18.2)
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        snap_id: Option<String>,
        /// show device cookie
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        show_cookie: bool,
        /// specify device cookie
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        cookie: Option<String>,
        /// map read-only
        #[arg(long)]
        read_only: bool,
        /// disable automatic exclusive lock transitions
        #[arg(long)]
        exclusive: bool,
        /// use quiesce hooks
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        quiesce: bool,
        /// quiesce hook path
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        quiesce_hook: Option<String>,
        /// device specific options
        #[arg(short = 'o', long)]
        options: Vec<String>,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// Unmap a rbd device.
    Unmap {
        #[command(flatten)]
        device_type: DeviceTypeOpt,
        #[command(flatten)]
        spec: SnapOpts,
        /// snapshot id (rbd 18.2)
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        snap_id: Option<String>,
        /// device specific options
        #[arg(short = 'o', long)]
        options: Vec<String>,
        /// image, snapshot, or device specification
        #[arg(value_name = "image-or-snap-or-device-spec")]
        spec_or_device: Option<String>,
    },
}

/// `feature enable|disable`.
#[derive(Subcommand)]
enum FeatureCmd {
    /// Disable the specified image feature.
    Disable {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// image features [exclusive-lock, object-map, fast-diff, deep-flatten, journaling]
        #[arg(value_name = "features")]
        features: Vec<String>,
    },
    /// Enable the specified image feature.
    Enable {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        journal: JournalOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// image features [exclusive-lock, object-map, fast-diff, journaling]
        #[arg(value_name = "features")]
        features: Vec<String>,
    },
}

/// `group ...`.
#[derive(Subcommand)]
enum GroupCmd {
    /// Create a group.
    Create {
        #[command(flatten)]
        spec: GroupOpts,
        #[command(flatten)]
        pos: GroupSpec,
    },
    /// Group images.
    #[command(subcommand)]
    Image(GroupImageCmd),
    /// List rbd groups.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
    /// Delete a group.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: GroupOpts,
        #[command(flatten)]
        pos: GroupSpec,
    },
    /// Rename a group within pool.
    Rename {
        #[command(flatten)]
        spec: GroupOpts,
        /// destination pool name
        #[arg(long)]
        dest_pool: Option<String>,
        /// destination namespace name
        #[arg(long)]
        dest_namespace: Option<String>,
        /// destination group name
        #[arg(long)]
        dest_group: Option<String>,
        /// source group specification
        #[arg(value_name = "source-group-spec")]
        source: Option<String>,
        /// destination group specification
        #[arg(value_name = "dest-group-spec")]
        dest_spec: Option<String>,
    },
    /// Group snapshots.
    #[command(subcommand)]
    Snap(GroupSnapCmd),
}

/// `group image ...`.
#[derive(Subcommand)]
enum GroupImageCmd {
    /// Add an image to a group.
    Add {
        #[command(flatten)]
        opts: GroupImageOpts,
        #[arg(
            value_name = "group-spec",
            help = "group specification (example: [<pool-name>/[<namespace>/]]<group-name>)"
        )]
        group_spec: Option<String>,
        #[arg(
            value_name = "image-spec",
            help = "image specification (example: [<pool-name>/[<namespace>/]]<image-name>)"
        )]
        image_spec: Option<String>,
    },
    /// List images in a group.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        spec: GroupOpts,
        #[command(flatten)]
        pos: GroupSpec,
    },
    /// Remove an image from a group.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        opts: GroupImageOpts,
        /// image id
        #[arg(long, help_heading = NOT_IMPLEMENTED)]
        image_id: Option<String>,
        #[arg(
            value_name = "group-spec",
            help = "group specification (example: [<pool-name>/[<namespace>/]]<group-name>)"
        )]
        group_spec: Option<String>,
        #[arg(
            value_name = "image-spec",
            help = "image specification (example: [<pool-name>/[<namespace>/]]<image-name>)"
        )]
        image_spec: Option<String>,
    },
}

/// `group snap ...`.
#[derive(Subcommand)]
enum GroupSnapCmd {
    /// Make a snapshot of a group.
    Create {
        #[command(flatten)]
        spec: GroupOpts,
        /// snapshot name
        #[arg(long)]
        snap: Option<String>,
        #[command(flatten)]
        quiesce: QuiesceOpts,
        #[command(flatten)]
        pos: GroupSnapSpec,
    },
    /// List snapshots of a group.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        spec: GroupOpts,
        #[command(flatten)]
        pos: GroupSpec,
    },
    /// Remove a snapshot from a group.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: GroupOpts,
        /// snapshot name
        #[arg(long)]
        snap: Option<String>,
        #[command(flatten)]
        pos: GroupSnapSpec,
    },
    /// Rename group's snapshot.
    Rename {
        #[command(flatten)]
        spec: GroupOpts,
        /// snapshot name
        #[arg(long)]
        snap: Option<String>,
        /// destination snapshot name
        #[arg(long)]
        dest_snap: Option<String>,
        #[command(flatten)]
        pos: GroupSnapSpec,
        /// destination snapshot name
        #[arg(value_name = "dest-snap")]
        dest_snap_name: Option<String>,
    },
    /// Rollback group to snapshot.
    Rollback {
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        spec: GroupOpts,
        /// snapshot name
        #[arg(long)]
        snap: Option<String>,
        #[command(flatten)]
        pos: GroupSnapSpec,
    },
}

/// `image-meta ...`.
#[derive(Subcommand)]
enum MetaCmd {
    /// Image metadata get the value associated with the key.
    Get {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// image meta key
        #[arg(value_name = "key")]
        key: Option<String>,
    },
    /// Image metadata list keys with values.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Image metadata remove the key and value associated.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// image meta key
        #[arg(value_name = "key")]
        key: Option<String>,
    },
    /// Image metadata set key with value.
    Set {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// image meta key
        #[arg(value_name = "key")]
        key: Option<String>,
        /// image meta value
        #[arg(value_name = "value")]
        value: Option<String>,
    },
}

/// `lock ...`.
#[derive(Subcommand)]
enum LockCmd {
    /// Take a lock on an image.
    Add {
        #[command(flatten)]
        spec: ImageOpts,
        /// shared lock tag
        #[arg(long)]
        shared: Option<String>,
        #[command(flatten)]
        pos: ImageSpec,
        /// unique lock id
        #[arg(value_name = "lock-id")]
        lock_id: Option<String>,
    },
    /// Show locks held on an image.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Release a lock on an image.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
        /// unique lock id
        #[arg(value_name = "lock-id")]
        lock_id: Option<String>,
        /// locker client
        #[arg(value_name = "locker")]
        locker: Option<String>,
    },
}

/// `namespace ...`.
#[derive(Subcommand)]
enum NamespaceCmd {
    /// Create an RBD image namespace.
    Create {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
    /// List RBD image namespaces.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        pool: PoolOpt,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: PoolName,
    },
    /// Remove an RBD image namespace.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
}

/// `nbd serve` (rbd-rs only).
#[derive(Subcommand)]
enum NbdCmd {
    /// Serve an image over NBD.
    Serve {
        #[command(flatten)]
        spec: SnapOpts,
        /// listen on this TCP address
        #[arg(long, value_name = "addr:port")]
        bind: Option<String>,
        /// listen on this Unix socket
        #[arg(long, value_name = "path")]
        socket: Option<String>,
        /// serve read-only
        #[arg(long)]
        read_only: bool,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
}

/// `object-map check|rebuild`.
#[derive(Subcommand)]
enum ObjectMapCmd {
    /// Verify the object map is correct.
    Check {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
    /// Rebuild an invalid object map.
    Rebuild {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageOrSnapSpec,
    },
}

/// `pool init|stats`.
#[derive(Subcommand)]
enum PoolCmd {
    /// Initialize pool for use by RBD.
    Init {
        #[command(flatten)]
        pool: PoolOpt,
        /// force initialize pool for RBD use if registered by another application
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        pos: PoolName,
    },
    /// Display pool statistics.
    Stats {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
}

/// `snap ...`.
#[derive(Subcommand)]
enum SnapCmd {
    /// Create a snapshot.
    #[command(visible_alias = "add")]
    Create {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        quiesce: QuiesceOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: SnapSpec,
    },
    /// Snapshot limits.
    #[command(subcommand)]
    Limit(SnapLimitCmd),
    /// Dump list of image snapshots.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        #[command(flatten)]
        format: FormatOpts,
        /// list snapshots from all namespaces
        #[arg(short = 'a', long)]
        all: bool,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Prevent a snapshot from being deleted.
    Protect {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        pos: SnapSpec,
    },
    /// Delete all unprotected snapshots.
    Purge {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Delete a snapshot.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        /// snapshot id
        #[arg(long)]
        snap_id: Option<String>,
        #[command(flatten)]
        progress: ProgressOpt,
        /// flatten children and unprotect snapshot if needed.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        pos: SnapSpec,
    },
    /// Rename a snapshot.
    Rename {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        dest: DestOpts,
        /// destination snapshot name
        #[arg(long)]
        dest_snap: Option<String>,
        /// source snapshot specification
        #[arg(value_name = "source-snap-spec")]
        source: Option<String>,
        /// destination snapshot specification
        #[arg(value_name = "dest-snap-spec")]
        dest_spec: Option<String>,
    },
    /// Rollback image to snapshot.
    #[command(visible_alias = "revert")]
    Rollback {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        #[command(flatten)]
        pos: SnapSpec,
    },
    /// Allow a snapshot to be deleted.
    Unprotect {
        #[command(flatten)]
        spec: SnapOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        #[command(flatten)]
        pos: SnapSpec,
    },
}

/// `snap limit set|clear`.
#[derive(Subcommand)]
enum SnapLimitCmd {
    /// Remove snapshot limit.
    Clear {
        #[command(flatten)]
        spec: ImageOpts,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Limit the number of snapshots.
    Set {
        #[command(flatten)]
        spec: ImageOpts,
        /// maximum allowed snapshot count
        #[arg(long)]
        limit: Option<String>,
        #[command(flatten)]
        pos: ImageSpec,
    },
}

/// `trash ...`.
#[derive(Subcommand)]
enum TrashCmd {
    /// List trash images.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        spec: PoolNsOpts,
        /// list images from all sources
        #[arg(short = 'a', long)]
        all: bool,
        /// long listing format
        #[arg(short = 'l', long)]
        long: bool,
        #[command(flatten)]
        format: FormatOpts,
        #[command(flatten)]
        pos: PoolSpec,
    },
    /// Move an image to the trash.
    #[command(visible_alias = "mv")]
    Move {
        #[command(flatten)]
        spec: ImageOpts,
        /// set the expiration time of an image so it can be purged when it is stale
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        pos: ImageSpec,
    },
    /// Remove all expired images from trash.
    Purge {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        progress: ProgressOpt,
        /// purges images that expired before the given date
        #[arg(long, value_name = "date")]
        expired_before: Option<String>,
        /// purges images until the current pool data usage is reduced to X%, value
        /// range: 0.0-1.0
        #[arg(long)]
        threshold: Option<String>,
        #[command(flatten)]
        pos: PoolSpec,
    },
    /// Remove an image from trash.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        #[command(flatten)]
        progress: ProgressOpt,
        /// force remove of non-expired delayed images
        #[arg(long)]
        force: bool,
        #[arg(
            value_name = "image-id",
            help = "image id specification (example: [<pool-name>/[<namespace>/]]<image-id>)"
        )]
        id_spec: Option<String>,
    },
    /// Restore an image from trash.
    Restore {
        #[command(flatten)]
        spec: PoolNsOpts,
        #[command(flatten)]
        id: ImageIdOpt,
        /// image name
        #[arg(long)]
        image: Option<String>,
        #[arg(
            value_name = "image-id",
            help = "image id specification (example: [<pool-name>/[<namespace>/]]<image-id>)"
        )]
        id_spec: Option<String>,
    },
}

/// The whole command tree, with the settings the adapter relies on applied to every
/// option (a valued option may take a negative number: `--size -5` reaches the
/// handler's check, as boost passes it on), built so the global options are part of
/// every command's arguments.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    fn fix(c: clap::Command) -> clap::Command {
        let c = c.mut_args(|a| {
            if a.get_action().takes_values() {
                a.allow_negative_numbers(true)
            } else {
                a
            }
        });
        let subs: Vec<String> = c
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        subs.into_iter()
            .fold(c, |c, name| c.mut_subcommand(name, fix))
    }
    let mut c = fix(Cli::command());
    c.build();
    c
}
