//! A watch that starts over after an error.
//!
//! kube-runtime's watcher keeps reading the same watch response after an error in it. A
//! response whose body is no stream of watch events — seen on a real API server restarting: a
//! Status document spread over several lines — then yields one error per line, each followed
//! by the backoff, and the watch is stuck for minutes (tests/e2e.rs, the restart test). Dropping
//! the stream at the first error and starting anew (a fresh list, then a watch; the reflector
//! takes the new list as the truth) recovers after one backoff instead.

use std::fmt::Debug;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::Api;
use kube::Resource;
use kube::runtime::watcher::{self, watcher};
use serde::de::DeserializeOwned;

pub fn fresh_after_error<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    type Current<K> = Option<BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>>;
    futures::stream::unfold(None, move |current: Current<K>| {
        let (api, config) = (api.clone(), config.clone());
        async move {
            let mut stream =
                current.unwrap_or_else(|| watcher(api.clone(), config.clone()).boxed());
            loop {
                match stream.next().await {
                    Some(Ok(event)) => return Some((Ok(event), Some(stream))),
                    // The caller's backoff runs before the next item, which starts a new watcher.
                    Some(Err(error)) => return Some((Err(error), None)),
                    // A watcher does not end; should one, a new one takes over: the caller's
                    // stream must never end while the process runs.
                    None => stream = watcher(api.clone(), config.clone()).boxed(),
                }
            }
        }
    })
}
