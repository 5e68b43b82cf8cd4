//! Desktop notifications (the freedesktop notification server, over D-Bus, via
//! notify-rust) for a window in the background: a call that rings, with Accept and
//! Decline where the server shows actions, and a missed call. Each notification is a task
//! on the app's runtime, so the UI thread never waits on D-Bus; what the user chose comes
//! back through [`Notifier::answer`]. No notification server (a bare machine, a desktop
//! without one) costs the notification, nothing else.

use confab_call::Wake;
use notify_rust::{Hint, Notification, NotificationResponse, Timeout, Urgency};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the user did with a ringing notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
    /// Clicked the notification itself: bring the window forward.
    Show,
}

/// The notification's action keys (the freedesktop "default" action is a click on it).
const ACCEPT: &str = "accept";
const DECLINE: &str = "decline";

pub struct Notifier {
    runtime: tokio::runtime::Handle,
    wake: Wake,
    answers_in: mpsc::UnboundedSender<Answer>,
    answers: mpsc::UnboundedReceiver<Answer>,
    /// Withdraws the ringing notification, while there is one.
    ringing: Option<CancellationToken>,
}

impl Notifier {
    pub fn new(runtime: tokio::runtime::Handle, wake: Wake) -> Notifier {
        let (answers_in, answers) = mpsc::unbounded_channel();
        Notifier {
            runtime,
            wake,
            answers_in,
            answers,
            ringing: None,
        }
    }

    /// Shows `title` until [`Notifier::stop_ringing`], with Accept and Decline.
    pub fn ringing(&mut self, title: &str, body: &str, accept_label: &str) {
        self.stop_ringing();
        let stop = CancellationToken::new();
        self.ringing = Some(stop.clone());
        let mut notification = base(title, body);
        notification
            .urgency(Urgency::Critical)
            .timeout(Timeout::Never)
            .action("default", "Show Confab")
            .action(ACCEPT, accept_label)
            .action(DECLINE, "Decline");
        let answers = self.answers_in.clone();
        let wake = self.wake.clone();
        self.runtime.spawn(async move {
            let handle = match notification.show_async().await {
                Ok(handle) => handle,
                Err(err) => {
                    tracing::debug!("no desktop notification for the call: {err}");
                    return;
                }
            };
            let chosen = handle.wait_for_action_async(move |response| {
                let answer = match response {
                    NotificationResponse::Action(key) if key == ACCEPT => Answer::Accept,
                    NotificationResponse::Action(key) if key == DECLINE => Answer::Decline,
                    NotificationResponse::Default => Answer::Show,
                    _ => return,
                };
                let _ = answers.send(answer);
                wake();
            });
            // Answered here or in the app: either way it has done its job.
            tokio::select! {
                () = chosen => {}
                () = stop.cancelled() => {}
            }
            handle.close_async().await;
        });
    }

    /// Withdraws the ringing notification, if there is one.
    pub fn stop_ringing(&mut self) {
        if let Some(stop) = self.ringing.take() {
            stop.cancel();
        }
    }

    /// Says once, without asking anything.
    pub fn tell(&self, title: &str, body: &str) {
        let notification = base(title, body);
        self.runtime.spawn(async move {
            if let Err(err) = notification.show_async().await {
                tracing::debug!("no desktop notification: {err}");
            }
        });
    }

    /// What the user chose in a notification, if anything since the last call.
    pub fn answer(&mut self) -> Option<Answer> {
        self.answers.try_recv().ok()
    }
}

fn base(title: &str, body: &str) -> Notification {
    let mut notification = Notification::new();
    notification
        .appname("Confab")
        .icon("confab")
        // The installed desktop entry: its name and icon.
        .hint(Hint::DesktopEntry("confab".into()))
        .summary(title)
        .body(body);
    notification
}
