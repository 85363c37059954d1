//! The wire between a running daemon and the new one it hands over to on
//! `baton upgrade`: a Unix stream on which the old daemon sends its
//! listening sockets (SCM_RIGHTS) with a line saying what each is for, and
//! the new one answers with one line, ready or why not.
//!
//! Passing the sockets themselves, never binding again (with SO_REUSEPORT,
//! say), is what keeps the connections the kernel has queued on them: both
//! processes hold the same sockets, so nothing is refused while the new
//! one starts and the old one stops accepting.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use serde::{Deserialize, Serialize};

/// Set in the new daemon's environment: the Unix socket to fetch its
/// sockets from. A daemon started without it binds its own.
pub const HANDOFF_SOCKET_ENV: &str = "BATON_HANDOFF_SOCKET";

/// The most sockets one hand-over carries: listeners, the control socket
/// and the log; far more than any daemon holds.
const MAX_SOCKETS: usize = 64;

/// The longest first line accepted (the sockets' descriptions).
const MAX_LINE: usize = 64 * 1024;

/// What a handed-over file descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketRole {
    /// A public plain-HTTP listener.
    Http,
    /// A public HTTPS listener.
    Https,
    /// The admin listener (`--admin`).
    Admin,
    /// The control socket (`baton.sock`).
    Control,
    /// Where the old daemon logs (its standard error): the new one logs
    /// there too once it is ready, so the log goes on in one place.
    Log,
}

/// One handed-over descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedSocket {
    /// What it is.
    pub role: SocketRole,
    /// Whether systemd passed it to the first daemon (socket activation).
    pub inherited: bool,
}

/// The old daemon's first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The old daemon, which stops accepting once the new one is ready.
    pub old_pid: u32,
    /// The descriptors that come with the line, in order.
    pub sockets: Vec<HandedSocket>,
}

/// The new daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// It accepts on every socket now.
    Ready {
        /// Its process id.
        pid: u32,
    },
    /// It cannot take over, and exits.
    Failed {
        /// Why, for the operator.
        reason: String,
    },
}

/// Why a hand-over message could not be sent or read.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The socket failed.
    #[error("the hand-over socket failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the socket before a whole message.
    #[error("the other daemon closed the hand-over socket before a whole message")]
    Closed,
    /// A message was not what the protocol says.
    #[error("the hand-over message does not read: {0}")]
    Malformed(String),
}

/// Sends `handover` with its descriptors, in the same order as
/// `handover.sockets`.
pub fn send_handover(
    stream: &UnixStream,
    handover: &Handover,
    fds: &[BorrowedFd<'_>],
) -> Result<(), HandoffError> {
    if fds.len() != handover.sockets.len() || fds.len() > MAX_SOCKETS {
        return Err(HandoffError::Malformed(format!(
            "{} sockets described, {} given (at most {MAX_SOCKETS})",
            handover.sockets.len(),
            fds.len()
        )));
    }
    let mut line =
        serde_json::to_vec(handover).map_err(|error| HandoffError::Malformed(error.to_string()))?;
    line.push(b'\n');
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(HandoffError::Malformed("the descriptors do not fit".into()));
    }
    // The descriptors travel with the first bytes; the rest of a line too
    // long for one call follows as plain data.
    let sent = sendmsg(
        stream,
        &[IoSlice::new(&line)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    (&*stream).write_all(&line[sent..])?;
    Ok(())
}

/// Receives the old daemon's [`Handover`] and its descriptors.
pub fn receive_handover(stream: &UnixStream) -> Result<(Handover, Vec<OwnedFd>), HandoffError> {
    let mut buffer = vec![0u8; MAX_LINE];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut buffer)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    if received.bytes == 0 {
        return Err(HandoffError::Closed);
    }
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let mut line = buffer[..received.bytes].to_vec();
    if !line.ends_with(b"\n") {
        let mut rest = Vec::new();
        BufReader::new(stream)
            .take((MAX_LINE - line.len()) as u64)
            .read_until(b'\n', &mut rest)?;
        line.extend(rest);
    }
    let handover: Handover = parse_line(&line)?;
    if handover.sockets.len() != fds.len() {
        return Err(HandoffError::Malformed(format!(
            "{} sockets described, {} received",
            handover.sockets.len(),
            fds.len()
        )));
    }
    Ok((handover, fds))
}

/// Sends the new daemon's answer.
pub fn send_answer(mut stream: &UnixStream, answer: &Answer) -> Result<(), HandoffError> {
    let mut line =
        serde_json::to_vec(answer).map_err(|error| HandoffError::Malformed(error.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(())
}

/// Reads the new daemon's answer (blocking until it comes or the socket
/// closes).
pub fn receive_answer(stream: &UnixStream) -> Result<Answer, HandoffError> {
    let mut line = Vec::new();
    BufReader::new(stream)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    parse_line(&line)
}

fn parse_line<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, HandoffError> {
    if !line.ends_with(b"\n") {
        return Err(HandoffError::Closed);
    }
    serde_json::from_slice(line).map_err(|error| HandoffError::Malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn listeners_cross_with_their_roles_and_keep_listening() {
        let (old, new) = UnixStream::pair().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (log_reader, log_writer) = std::io::pipe().unwrap();
        let handover = Handover {
            old_pid: 42,
            sockets: vec![
                HandedSocket {
                    role: SocketRole::Http,
                    inherited: true,
                },
                HandedSocket {
                    role: SocketRole::Log,
                    inherited: false,
                },
            ],
        };
        send_handover(&old, &handover, &[listener.as_fd(), log_writer.as_fd()]).unwrap();
        drop((listener, log_writer));

        let (received, mut fds) = receive_handover(&new).unwrap();
        assert_eq!(received, handover);
        let log = std::io::PipeWriter::from(fds.pop().unwrap());
        let listener = TcpListener::from(fds.pop().unwrap());
        // The same socket, still listening: a client connects and is
        // accepted by the receiver.
        assert_eq!(listener.local_addr().unwrap(), address);
        let _client = std::net::TcpStream::connect(address).unwrap();
        listener.accept().unwrap();
        (&log).write_all(b"logged").unwrap();
        drop(log);
        let mut logged = String::new();
        (&log_reader).read_to_string(&mut logged).unwrap();
        assert_eq!(logged, "logged");

        send_answer(&new, &Answer::Ready { pid: 7 }).unwrap();
        assert_eq!(receive_answer(&old).unwrap(), Answer::Ready { pid: 7 });
    }

    #[test]
    fn a_closed_socket_or_a_bad_line_is_an_error() {
        let (old, new) = UnixStream::pair().unwrap();
        drop(new);
        assert!(matches!(receive_answer(&old), Err(HandoffError::Closed)));

        let (old, new) = UnixStream::pair().unwrap();
        (&new).write_all(b"{\"ready\": {}}\n").unwrap();
        assert!(matches!(
            receive_answer(&old),
            Err(HandoffError::Malformed(_))
        ));

        let (old, new) = UnixStream::pair().unwrap();
        drop(old);
        assert!(matches!(receive_handover(&new), Err(HandoffError::Closed)));
    }

    #[test]
    fn a_description_that_does_not_match_the_descriptors_is_refused() {
        let (old, _new) = UnixStream::pair().unwrap();
        let handover = Handover {
            old_pid: 1,
            sockets: vec![],
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(matches!(
            send_handover(&old, &handover, &[listener.as_fd()]),
            Err(HandoffError::Malformed(_))
        ));
    }
}
