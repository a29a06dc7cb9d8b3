"""The kernel: what every feature imports (caller, ids, errors, clock, frames), importing none of them."""
