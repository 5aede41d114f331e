//! Images: present locally, or pulled with per-layer progress, as the pull policy says.

use std::collections::BTreeMap;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::{Engine, Error, api, is_not_found};
use crate::runtime::events::{Events, StackEvent};
use crate::stack::{ImageRef, Selection};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull only images that are not on this machine.
    #[default]
    Missing,
    /// Pull every image (picks up a re-pushed tag).
    Always,
    /// Never pull: fail if an image is missing.
    Never,
}

impl Engine {
    /// `lab pull` / the TUI's pull key: every image of the selection, fresh from the registry.
    pub async fn pull_images(&self, selection: &Selection<'_>, events: &Events) -> Result<(), Error> {
        self.ensure_images(selection, PullPolicy::Always, events).await
    }

    /// Makes every image of the selection available, or fails naming the image and its services.
    pub(super) async fn ensure_images(
        &self,
        selection: &Selection<'_>,
        policy: PullPolicy,
        events: &Events,
    ) -> Result<(), Error> {
        let mut by_image: BTreeMap<String, (&ImageRef, Vec<String>)> = BTreeMap::new();
        for s in &selection.services {
            by_image
                .entry(s.image.to_string())
                .or_insert_with(|| (&s.image, Vec::new()))
                .1
                .push(s.name.clone());
        }
        for (image, (reference, services)) in by_image {
            let present = policy != PullPolicy::Always && self.image_present(&image).await?;
            if present {
                events.send(StackEvent::ImagePresent { image });
                continue;
            }
            if policy == PullPolicy::Never {
                return Err(Error::ImageMissing {
                    image,
                    services: services.join(", "),
                });
            }
            self.pull(reference, &services, events).await?;
        }
        Ok(())
    }

    async fn image_present(&self, image: &str) -> Result<bool, Error> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api(format!("inspect image {image}"))(e)),
        }
    }

    async fn pull(&self, image: &ImageRef, services: &[String], events: &Events) -> Result<(), Error> {
        let name = image.to_string();
        events.send(StackEvent::PullStarted {
            image: name.clone(),
            services: services.to_vec(),
        });
        let mut options = CreateImageOptionsBuilder::default();
        options = match (&image.digest, &image.tag) {
            (Some(_), _) => options.from_image(&name),
            (None, Some(tag)) => options.from_image(&image.repository).tag(tag),
            (None, None) => options.from_image(&image.repository),
        };
        let failed = |reason: String| Error::PullFailed {
            image: name.clone(),
            services: services.join(", "),
            reason,
        };
        let mut stream = self.docker.create_image(Some(options.build()), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(engine_message(e)))?;
            if let Some(detail) = info.error_detail {
                return Err(failed(detail.message.unwrap_or_else(|| "unknown error".into())));
            }
            let Some(layer) = info.id else { continue };
            let progress = info.progress_detail.unwrap_or_default();
            events.send(StackEvent::Pulling {
                image: name.clone(),
                layer,
                status: info.status.unwrap_or_default(),
                current: progress.current.and_then(|c| u64::try_from(c).ok()),
                total: progress.total.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0),
            });
        }
        // The stream can end without an error even when nothing arrived (e.g. a proxy cut it).
        if !self.image_present(&name).await? {
            return Err(failed(
                "the engine reported no error, but the image is still missing".into(),
            ));
        }
        events.send(StackEvent::Pulled { image: name });
        Ok(())
    }
}

/// The engine's own words for a failure, without bollard's wrapping.
fn engine_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}
