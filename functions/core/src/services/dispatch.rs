//! (being written)
pub struct Dispatcher;
