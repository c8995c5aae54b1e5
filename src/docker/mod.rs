//! The Docker Engine: the container inventory it keeps current from the engine's API and
//! event stream.

pub mod api;
pub mod client;
pub mod container;
pub mod endpoint;
pub mod events;
pub mod inventory;
pub mod replay;
pub mod sync;

pub use client::{EngineClient, EngineError};
pub use container::Container;
pub use endpoint::Endpoint;
pub use inventory::{Engine, Inventory, Snapshot, Tracked};
