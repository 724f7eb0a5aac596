//! (being written) Inbound endpoints and the receiver.
