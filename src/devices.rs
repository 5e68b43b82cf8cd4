//! `confab devices`: the cameras, screens, microphones and speakers Confab can use.

use confab_media::audio::list_devices;
use confab_media::video::{list_cameras, list_screens};

pub fn print() -> anyhow::Result<()> {
    println!("Cameras:");
    // No camera is an answer, not an error: say so and go on to the audio devices.
    match list_cameras() {
        Ok(cameras) if cameras.is_empty() => println!("  (none)"),
        Ok(cameras) => {
            for camera in cameras {
                println!("  #{} {}", camera.index, camera.name);
                for mode in camera.modes {
                    println!(
                        "      {}x{} @ {} fps, {:?}",
                        mode.width, mode.height, mode.fps, mode.pixels
                    );
                }
            }
        }
        Err(err) => println!("  (cannot list cameras: {err})"),
    }
    println!("Screens (to share: confab headless --video screen:INDEX):");
    match list_screens(None) {
        Ok(screens) if screens.is_empty() => println!("  (none)"),
        Ok(screens) => {
            for screen in screens {
                let primary = if screen.primary { ", primary" } else { "" };
                println!(
                    "  #{} {} ({}x{}{primary})",
                    screen.index, screen.name, screen.width, screen.height
                );
            }
        }
        Err(err) => println!("  (cannot list screens: {err})"),
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
