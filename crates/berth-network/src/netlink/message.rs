//! rtnetlink messages as plain bytes: building requests, walking replies.
//!
//! A netlink message is a 16-byte `nlmsghdr` (length, type, flags, sequence
//! number, port id), a fixed family header (`ifinfomsg`, `ifaddrmsg`,
//! `rtmsg`) and a run of attributes, each a 4-byte `rtattr` (length, type)
//! and a payload padded to 4 bytes. Attributes nest: a nested attribute's
//! payload is itself a run of attributes (`IFLA_LINKINFO` holds
//! `IFLA_INFO_KIND` and `IFLA_INFO_DATA`, whose veth payload is the peer's
//! `ifinfomsg` followed by the peer's attributes). Everything is in the
//! host's byte order except addresses, which are in network order.
//!
//! The values below are those of the kernel's uapi headers
//! (`linux/netlink.h`, `rtnetlink.h`, `if_link.h`, `if_addr.h`, `veth.h`).

use std::fmt;

// nlmsghdr
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x01;
pub(crate) const NLM_F_MULTI: u16 = 0x02;
pub(crate) const NLM_F_ACK: u16 = 0x04;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));

// rtnetlink message types
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_SETLINK: u16 = 19;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;

// ifinfomsg attributes
pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MTU: u16 = 4;
pub(crate) const IFLA_MASTER: u16 = 10;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_NET_NS_FD: u16 = 28;
pub(crate) const IFLA_EXT_MASK: u16 = 29;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const VETH_INFO_PEER: u16 = 1;
/// `IFLA_EXT_MASK` value that leaves the statistics out of link replies.
pub(crate) const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub(crate) const IFF_UP: u32 = 0x1;

// ifaddrmsg attributes and flags
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_BROADCAST: u16 = 4;
pub(crate) const IFA_FLAGS: u16 = 8;
pub(crate) const IFA_F_NODAD: u32 = 0x02;

// rtmsg fields and attributes
pub(crate) const RTA_GATEWAY: u16 = 5;
pub(crate) const RTA_OIF: u16 = 4;
pub(crate) const RT_TABLE_MAIN: u8 = 254;
pub(crate) const RTPROT_BOOT: u8 = 3;
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RTN_UNICAST: u8 = 1;

pub(crate) const AF_UNSPEC: u8 = 0;
pub(crate) const AF_INET: u8 = 2;
pub(crate) const AF_INET6: u8 = 10;

const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// `struct ifinfomsg`: family, type, index, flags and the mask of flags to change.
pub(crate) fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = AF_UNSPEC;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`: family, prefix length, flags (low 8 bits), scope, index.
pub(crate) fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, index: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix_len;
    h[2] = flags;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg` for a unicast route in the main table, added as `ip route` does.
pub(crate) fn rtmsg(family: u8, dst_len: u8) -> [u8; 12] {
    [
        family,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// Builds one request; the sequence number is written when it is sent.
#[derive(Debug)]
pub(crate) struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    pub(crate) fn new(ty: u16, flags: u16, header: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(header);
        buf.resize(align(buf.len()), 0);
        MessageBuilder { buf }
    }

    pub(crate) fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    pub(crate) fn attr_u32(&mut self, ty: u16, value: u32) -> &mut Self {
        self.attr(ty, &value.to_ne_bytes())
    }

    /// A NUL-terminated string, as the kernel wants names.
    pub(crate) fn attr_str(&mut self, ty: u16, value: &str) -> &mut Self {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.attr(ty, &payload)
    }

    /// Opens a nested attribute; close it with [`end_nest`](Self::end_nest).
    pub(crate) fn begin_nest(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.attr(ty | NLA_F_NESTED, &[]);
        start
    }

    /// Raw bytes inside a nest (the veth peer's `ifinfomsg`).
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    pub(crate) fn end_nest(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Writes `seq` into a built message.
pub(crate) fn set_seq(message: &mut [u8], seq: u32) {
    message[8..12].copy_from_slice(&seq.to_ne_bytes());
}

/// A reply the kernel should never send: cut short or with a length that
/// does not add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub(crate) &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The fields of an `nlmsghdr` that replies are matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
}

/// The messages in one datagram, each with the payload after its header.
pub(crate) fn messages(mut buf: &[u8]) -> impl Iterator<Item = Result<(Header, &[u8]), Malformed>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        if buf.len() < NLMSG_HDRLEN {
            buf = &[];
            return Some(Err(Malformed("netlink message shorter than its header")));
        }
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            buf = &[];
            return Some(Err(Malformed("netlink message length out of bounds")));
        }
        let header = Header {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
        };
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = &buf[align(len).min(buf.len())..];
        Some(Ok((header, payload)))
    })
}

/// The attributes in `buf`, each as (type without the nested flag, payload).
pub(crate) fn attrs(mut buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), Malformed>> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            // Trailing padding shorter than an attribute header is not an error.
            return None;
        }
        let len = u16_at(buf, 0) as usize;
        if len < 4 || len > buf.len() {
            buf = &[];
            return Some(Err(Malformed("netlink attribute length out of bounds")));
        }
        let ty = u16_at(buf, 2) & NLA_TYPE_MASK;
        let payload = &buf[4..len];
        buf = &buf[align(len).min(buf.len())..];
        Some(Ok((ty, payload)))
    })
}

/// The error code of an `NLMSG_ERROR` payload: 0 for an acknowledgement,
/// else a negated errno.
pub(crate) fn error_code(payload: &[u8]) -> Result<i32, Malformed> {
    if payload.len() < 4 {
        return Err(Malformed("netlink error message cut short"));
    }
    Ok(i32::from_ne_bytes(payload[0..4].try_into().expect("4 bytes")))
}

pub(crate) fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// A NUL-terminated string attribute.
pub(crate) fn str_attr(payload: &[u8]) -> String {
    let end = payload.iter().position(|&b| b == 0).unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_header_family_header_and_padded_attributes() {
        let mut m = MessageBuilder::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifinfomsg(0, IFF_UP, IFF_UP));
        m.attr_str(IFLA_IFNAME, "eth0").attr_u32(IFLA_MTU, 1500);
        let mut bytes = m.finish();
        set_seq(&mut bytes, 7);
        // 16 (nlmsghdr) + 16 (ifinfomsg) + 4+5 padded to 12 + 8.
        assert_eq!(bytes.len(), 52);
        assert_eq!(u32_at(&bytes, 0), 52);
        assert_eq!(u16_at(&bytes, 4), RTM_SETLINK);
        assert_eq!(u16_at(&bytes, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&bytes, 8), 7);
        assert_eq!(u32_at(&bytes, 16 + 8), IFF_UP);
        assert_eq!(&bytes[32..44], &[9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0]);
        assert_eq!(&bytes[44..52], &[8, 0, 4, 0, 0xdc, 0x05, 0, 0]);

        let (header, payload) = messages(&bytes).next().unwrap().unwrap();
        assert_eq!(
            header,
            Header {
                ty: RTM_SETLINK,
                flags: NLM_F_REQUEST | NLM_F_ACK,
                seq: 7
            }
        );
        let parsed: Vec<_> = attrs(&payload[16..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            parsed,
            vec![(IFLA_IFNAME, &b"eth0\0"[..]), (IFLA_MTU, &1500u32.to_ne_bytes()[..])]
        );
        assert_eq!(str_attr(parsed[0].1), "eth0");
    }

    #[test]
    fn nests_carry_their_whole_length_and_the_nested_flag() {
        let mut m = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST, &ifinfomsg(0, 0, 0));
        let info = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin_nest(IFLA_INFO_DATA);
        let peer = m.begin_nest(VETH_INFO_PEER);
        m.raw(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, "eth0");
        m.end_nest(peer);
        m.end_nest(data);
        m.end_nest(info);
        let bytes = m.finish();

        let (_, payload) = messages(&bytes).next().unwrap().unwrap();
        let top: Vec<_> = attrs(&payload[16..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, IFLA_LINKINFO, "the nested flag is masked off");
        assert_eq!(u16_at(payload, 18) & NLA_F_NESTED, NLA_F_NESTED);
        let info: Vec<_> = attrs(top[0].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(str_attr(info[0].1), "veth");
        let data: Vec<_> = attrs(info[1].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(data[0].0, VETH_INFO_PEER);
        let peer = data[0].1;
        assert_eq!(peer.len(), 16 + 12);
        let peer_attrs: Vec<_> = attrs(&peer[16..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(peer_attrs, vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    #[test]
    fn several_messages_in_one_datagram_split_on_aligned_lengths() {
        let mut datagram = Vec::new();
        for seq in [1u32, 2] {
            let mut m = MessageBuilder::new(NLMSG_ERROR, 0, &(-17i32).to_ne_bytes());
            m.attr(1, &[1, 2, 3]);
            let mut b = m.finish();
            set_seq(&mut b, seq);
            datagram.extend_from_slice(&b);
        }
        let parsed: Vec<_> = messages(&datagram).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].0.seq, 2);
        assert_eq!(error_code(parsed[0].1), Ok(-17));
    }

    #[test]
    fn cut_short_replies_are_malformed_not_a_panic() {
        let mut m = MessageBuilder::new(RTM_NEWLINK, 0, &ifinfomsg(1, 0, 0));
        m.attr_str(IFLA_IFNAME, "lo");
        let bytes = m.finish();
        for cut in 1..bytes.len() {
            let r: Result<Vec<_>, _> = messages(&bytes[..cut]).collect();
            assert!(r.is_err(), "a message cut at {cut} bytes parsed");
        }
        let bad_attr = [200u8, 0, 3, 0, b'l', b'o', 0, 0];
        assert!(attrs(&bad_attr).next().unwrap().is_err());
        assert!(attrs(&[0u8, 0]).next().is_none(), "short padding ends the run");
        assert!(error_code(&[0, 0]).is_err());
    }
}
