//! `container_network_{receive,transmit}_{bytes,packets,errors,packets_dropped}_total`, per
//! interface, from the target's network namespace.

use super::{Collector, Read, TargetContext};
use crate::cgroup::FileError;
use crate::host::netdev;
use crate::metrics::{Desc, TargetSamples, counter};
use crate::target::Network;

pub static COLLECTOR: Collector = Collector {
    name: "network",
    help: "Network traffic per interface of each container's own namespace and the host's (/proc/<pid>/net/dev)",
    enabled_by_default: true,
    families: &[
        &RECEIVE_BYTES,
        &RECEIVE_PACKETS,
        &RECEIVE_ERRORS,
        &RECEIVE_DROPPED,
        &TRANSMIT_BYTES,
        &TRANSMIT_PACKETS,
        &TRANSMIT_ERRORS,
        &TRANSMIT_DROPPED,
    ],
    read: Read::PerTarget(collect),
};

static RECEIVE_BYTES: Desc = counter(
    "container_network_receive_bytes_total",
    "Cumulative bytes received.",
);
static RECEIVE_PACKETS: Desc = counter(
    "container_network_receive_packets_total",
    "Cumulative packets received.",
);
static RECEIVE_ERRORS: Desc = counter(
    "container_network_receive_errors_total",
    "Cumulative errors while receiving.",
);
static RECEIVE_DROPPED: Desc = counter(
    "container_network_receive_packets_dropped_total",
    "Cumulative packets dropped while receiving.",
);
static TRANSMIT_BYTES: Desc = counter(
    "container_network_transmit_bytes_total",
    "Cumulative bytes transmitted.",
);
static TRANSMIT_PACKETS: Desc = counter(
    "container_network_transmit_packets_total",
    "Cumulative packets transmitted.",
);
static TRANSMIT_ERRORS: Desc = counter(
    "container_network_transmit_errors_total",
    "Cumulative errors while transmitting.",
);
static TRANSMIT_DROPPED: Desc = counter(
    "container_network_transmit_packets_dropped_total",
    "Cumulative packets dropped while transmitting.",
);

/// A target whose namespace is shared (the host's, another container's) has no series of
/// its own, so that sums over containers count each byte once.
fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let Network::Own { pid } = context.target.network else {
        return Ok(());
    };
    let Some(interfaces) = netdev::read(context.scrape.procfs, pid)? else {
        return Ok(());
    };
    for interface in interfaces {
        for (desc, value) in [
            (&RECEIVE_BYTES, interface.receive_bytes),
            (&RECEIVE_PACKETS, interface.receive_packets),
            (&RECEIVE_ERRORS, interface.receive_errors),
            (&RECEIVE_DROPPED, interface.receive_dropped),
            (&TRANSMIT_BYTES, interface.transmit_bytes),
            (&TRANSMIT_PACKETS, interface.transmit_packets),
            (&TRANSMIT_ERRORS, interface.transmit_errors),
            (&TRANSMIT_DROPPED, interface.transmit_dropped),
        ] {
            out.add_labelled(
                desc,
                vec![("interface", interface.name.clone().into())],
                Some(value),
            );
        }
    }
    Ok(())
}
