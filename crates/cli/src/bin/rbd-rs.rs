//! `rbd-rs`: an `rbd`-compatible command-line tool on the pure-Rust client (no librbd):
//! the same commands, argument forms, output, messages and exit statuses (the errno).

#[path = "../rbd_cmd/mod.rs"]
mod rbd_cmd;

use ceph_cli::common_setup;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (common, rest) = match common_setup(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rbd: {e}");
            std::process::exit(ceph_cli::exit_code(e.errno()));
        }
    };
    let code = match rbd_cmd::args::Args::parse(rest) {
        Err(f) => report(f),
        Ok(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(rbd_cmd::run(args, common)) {
                Ok(()) => 0,
                Err(f) => report(f),
            }
        }
    };
    std::process::exit(code);
}

fn report(f: rbd_cmd::Fail) -> i32 {
    if !f.msg.is_empty() {
        eprintln!("{}", f.msg);
    }
    f.code
}
