//! TEMPORARY stub until the simulator lands (keeps the crate compiling).
use std::time::Duration;
use crate::coinspaid::Credentials;
pub struct SimulatorSettings { pub credentials: Credentials, pub callback_url: Option<String>, pub callback_delay: Duration }
pub struct Simulator { base_url: String }
impl Simulator {
    pub async fn spawn(_s: SimulatorSettings, l: tokio::net::TcpListener) -> std::io::Result<Simulator> { Ok(Self { base_url: format!("http://{}", l.local_addr()?) }) }
    pub fn base_url(&self) -> String { self.base_url.clone() }
}
pub mod cli { pub async fn run() -> std::process::ExitCode { std::process::ExitCode::FAILURE } }
