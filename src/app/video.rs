//! Video on screen: takes the newest frame from a latest-frame slot (never waits) and
//! updates one texture in place. A frame that arrives between two repaints replaces the
//! older one in the slot; nothing queues.

use std::collections::BTreeMap;
use std::sync::Arc;

use confab_call::RemoteVideoFrame;
use confab_media::slot::LatestSlot;
use confab_media::video::{FrameSlot, I420Frame};
use confab_protocol::PeerId;
use egui::{ColorImage, TextureHandle, TextureOptions};

use super::ui::call::Picture;

/// One texture fed from frames of any size.
pub struct VideoTexture {
    name: &'static str,
    texture: Option<TextureHandle>,
    size: [usize; 2],
    /// Reused for I420 -> RGBA conversion.
    rgba: Vec<u8>,
}

impl VideoTexture {
    pub fn new(name: &'static str) -> VideoTexture {
        VideoTexture {
            name,
            texture: None,
            size: [0, 0],
            rgba: Vec::new(),
        }
    }

    /// The picture to draw, if a frame has arrived since the last `clear`.
    pub fn picture(&self) -> Option<Picture> {
        self.texture.as_ref().map(|texture| Picture {
            texture: texture.id(),
            size: self.size,
        })
    }

    /// Forgets the last picture (a call ended: do not show its last frame next time).
    pub fn clear(&mut self) {
        self.texture = None;
    }

    /// Shows a decoded remote frame. True if it changed.
    fn show_remote(&mut self, ctx: &egui::Context, frame: &RemoteVideoFrame) -> bool {
        let size = [frame.width as usize, frame.height as usize];
        if frame.rgba.len() != size[0] * size[1] * 4 {
            return false;
        }
        self.set(ctx, size, opaque_image(size, &frame.rgba));
        true
    }

    /// Shows the newest captured frame, if there is one. True if it changed.
    pub fn update_local(&mut self, ctx: &egui::Context, slot: &FrameSlot) -> bool {
        let Some(frame) = slot.take() else {
            return false;
        };
        self.show_i420(ctx, &frame)
    }

    /// Shows an opaque RGBA picture (a thumbnail made on another thread). True if it
    /// changed.
    pub fn show_rgba(&mut self, ctx: &egui::Context, size: [usize; 2], rgba: &[u8]) -> bool {
        if rgba.len() != size[0] * size[1] * 4 {
            return false;
        }
        self.set(ctx, size, opaque_image(size, rgba));
        true
    }

    fn show_i420(&mut self, ctx: &egui::Context, frame: &I420Frame) -> bool {
        if frame.write_rgba(&mut self.rgba).is_err() {
            return false;
        }
        let size = [frame.width() as usize, frame.height() as usize];
        self.set(ctx, size, opaque_image(size, &self.rgba));
        true
    }

    fn set(&mut self, ctx: &egui::Context, size: [usize; 2], image: ColorImage) {
        self.size = size;
        match &mut self.texture {
            // In place: the same texture id, new pixels.
            Some(texture) => texture.set(image, TextureOptions::LINEAR),
            None => self.texture = Some(ctx.load_texture(self.name, image, TextureOptions::LINEAR)),
        }
    }
}

/// A video picture for a texture. Video is opaque (the YUV conversions write alpha 255), and
/// opaque pixels are the same premultiplied or not: the premultiplied constructor copies
/// them, where the other one did per-pixel arithmetic (a third of the UI thread's CPU in a
/// call).
fn opaque_image(size: [usize; 2], rgba: &[u8]) -> ColorImage {
    ColorImage::from_rgba_premultiplied(size, rgba)
}

/// The remote pictures, one texture per member of the call: every link's frames share the
/// engine's slot, each saying who sent it. The cameras have one set, the shared screens
/// another.
pub struct RemoteTextures {
    name: &'static str,
    tiles: BTreeMap<PeerId, VideoTexture>,
}

impl RemoteTextures {
    /// Textures called `name` (for egui's texture list).
    pub fn new(name: &'static str) -> RemoteTextures {
        RemoteTextures {
            name,
            tiles: BTreeMap::new(),
        }
    }

    /// Takes the newest remote frame, if there is one, into its sender's texture. True if a
    /// picture changed.
    pub fn update(
        &mut self,
        ctx: &egui::Context,
        slot: &LatestSlot<Arc<RemoteVideoFrame>>,
    ) -> bool {
        let Some(frame) = slot.take() else {
            return false;
        };
        let name = self.name;
        self.tiles
            .entry(frame.peer.clone())
            .or_insert_with(|| VideoTexture::new(name))
            .show_remote(ctx, &frame)
    }

    /// Every member's newest picture.
    pub fn pictures(&self) -> BTreeMap<PeerId, Picture> {
        self.tiles
            .iter()
            .filter_map(|(peer, tile)| Some((peer.clone(), tile.picture()?)))
            .collect()
    }

    /// Forgets every picture (a call ended, or a new one starts).
    pub fn clear(&mut self) {
        self.tiles.clear();
    }

    /// Forgets `peer`'s picture (it stopped sharing its screen: a later share must not
    /// start with this one's last frame).
    pub fn forget(&mut self, peer: &PeerId) {
        self.tiles.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use confab_media::video::{PatternStamp, TestPattern, VideoFormat};

    use super::*;

    #[test]
    fn a_video_picture_is_the_same_taken_as_opaque() {
        let format = VideoFormat {
            width: 320,
            height: 240,
            fps: 30,
        };
        let frame = TestPattern::new(format).unwrap().render(PatternStamp {
            frame_number: 3,
            capture_time_us: 0,
        });
        let mut rgba = Vec::new();
        frame.write_rgba(&mut rgba).unwrap();
        assert!(rgba.chunks_exact(4).all(|pixel| pixel[3] == 255));
        let size = [320, 240];
        assert_eq!(
            opaque_image(size, &rgba),
            ColorImage::from_rgba_unmultiplied(size, &rgba)
        );
    }
}
