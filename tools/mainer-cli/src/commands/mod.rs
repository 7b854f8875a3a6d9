pub mod economy;
pub mod factory;
pub mod game;
pub mod status;
pub mod upload;
