//! Images: present locally, pulled with per-layer progress as the pull policy says, or built
//! (`build.rs`) for services that have a `build`.

use std::collections::BTreeMap;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::{Engine, Error, api, is_not_found};
use crate::runtime::events::{Events, StackEvent};
use crate::stack::{Build, ImageRef, Selection};

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

/// What one image of a selection needs: built or pulled, for which services, on which platform
/// (set when the engine's CPU has no variant of it and another one runs emulated).
struct ImageNeed<'a> {
    reference: &'a ImageRef,
    build: Option<&'a Build>,
    services: Vec<String>,
    platform: Option<&'a str>,
}

impl Engine {
    /// `lab pull` / the TUI's pull key: every image of the selection, fresh from the registry.
    pub async fn pull_images(&self, selection: &Selection<'_>, events: &Events) -> Result<(), Error> {
        self.ensure_images(selection, PullPolicy::Always, events)
            .await
            .map(drop)
    }

    /// Makes every image of the selection available (pulled, or built for services with a
    /// `build`), or fails naming the image and its services. Returns each image's id.
    pub(super) async fn ensure_images(
        &self,
        selection: &Selection<'_>,
        policy: PullPolicy,
        events: &Events,
    ) -> Result<BTreeMap<String, String>, Error> {
        // One entry per image: a service that runs an image another one builds waits for that build.
        let mut by_image: BTreeMap<String, ImageNeed<'_>> = BTreeMap::new();
        for s in &selection.services {
            let need = by_image.entry(s.image.to_string()).or_insert_with(|| ImageNeed {
                reference: &s.image,
                build: None,
                services: Vec::new(),
                platform: None,
            });
            need.build = need.build.or(s.build.as_ref());
            need.services.push(s.name.clone());
            need.platform = need
                .platform
                .or(self.arch.as_deref().and_then(|a| s.emulated_platform(a)));
        }
        let mut ids = BTreeMap::new();
        for (
            image,
            ImageNeed {
                reference,
                build,
                services,
                platform,
            },
        ) in by_image
        {
            if let Some(build) = build {
                self.ensure_built(reference, build, &services, policy, events).await?;
            } else {
                let present = policy != PullPolicy::Always && self.image_id(&image).await?.is_some();
                if present {
                    events.send(StackEvent::ImagePresent { image: image.clone() });
                } else if policy == PullPolicy::Never {
                    return Err(Error::ImageMissing {
                        image,
                        services: services.join(", "),
                    });
                } else {
                    self.pull(reference, &services, platform, events).await?;
                }
            }
            let id = self.image_id(&image).await?.ok_or_else(|| Error::ImageMissing {
                image: image.clone(),
                services: services.join(", "),
            })?;
            ids.insert(image, id);
        }
        Ok(ids)
    }

    /// The image's id (`sha256:…`) if it is on this machine.
    async fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(Some(info.id.unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(format!("inspect image {image}"))(e)),
        }
    }

    /// Pulls `image`; `platform` when it must be another CPU's variant than the engine's own.
    async fn pull(
        &self,
        image: &ImageRef,
        services: &[String],
        platform: Option<&str>,
        events: &Events,
    ) -> Result<(), Error> {
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
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
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
        if self.image_id(&name).await?.is_none() {
            return Err(failed(
                "the engine reported no error, but the image is still missing".into(),
            ));
        }
        events.send(StackEvent::Pulled { image: name });
        Ok(())
    }
}

/// The engine's own words for a failure, without bollard's wrapping.
pub(super) fn engine_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}
