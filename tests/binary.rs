//! The binary as an operator runs it: what its signals do, what it logs and
//! in which format, and its `healthcheck` subcommand.

mod util;

use packet_service::protocol::CodecKind;
use util::process::Process;
use util::Client;

#[test]
fn sighup_is_logged_and_the_gateway_keeps_serving() {
    let gw = Process::start(&["--no-metrics"], &[]);
    let addr = gw.addr();
    let mut before = Client::connect(addr, CodecKind::Rose);
    assert_eq!(before.accept().result, 2);

    gw.signal(libc::SIGHUP);
    gw.wait_for_line("reload requested (not yet supported: restart to apply changes)");
    // The connection made before the signal and a new one are both served.
    assert_eq!(before.accept().result, 2);
    let mut after = Client::connect(addr, CodecKind::Rose);
    assert_eq!(after.accept().result, 2);

    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}
