//! The loader's tests against real parts (the local lake, moto), in one test binary.

mod loader_lake;
mod moto_cloudwatch;
mod moto_securitylake;
mod moto_worker;
