//! The Docker Engine: the container inventory it keeps current from the engine's API and
//! event stream.

pub mod container;
pub mod events;
pub mod inventory;
pub mod replay;
pub mod sync;

pub use container::Container;
pub use inventory::{Engine, Inventory, Snapshot, Tracked};
