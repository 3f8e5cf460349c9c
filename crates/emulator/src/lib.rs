//! A faithful emulator of Alation's token API, for tests and demos
