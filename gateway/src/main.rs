//! The gateway binary (wired in a later step).

fn main() {}
