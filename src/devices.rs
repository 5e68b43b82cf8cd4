//! Lists the cameras, microphones and speakers Confab can use.
//!
//! ```text
//! cargo run --example devices
//! ```

use confab_media::audio::list_devices;
use confab_media::video::list_cameras;

fn main() -> anyhow::Result<()> {
    println!("Cameras:");
    let cameras = list_cameras()?;
    if cameras.is_empty() {
        println!("  (none)");
    }
    for camera in cameras {
        println!("  #{} {}", camera.index, camera.name);
        for mode in camera.modes {
            println!(
                "      {}x{} @ {} fps, {:?}",
                mode.width, mode.height, mode.fps, mode.pixels
            );
        }
    }
    let audio = list_devices()?;
    for (title, names) in [("Microphones", audio.inputs), ("Speakers", audio.outputs)] {
        println!("{title}:");
        if names.is_empty() {
            println!("  (none)");
        }
        for name in names {
            println!("  {name}");
        }
    }
    Ok(())
}
