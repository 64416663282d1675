//! The certificates a local etcd cluster runs with, generated at its start
//! into `<dir>/pki/`: a CA; one server certificate for every member (for
//! both its client and peer ports, with the host's address as its name,
//! and good as a client too, since etcd's own gateway and its peers dial
//! with it); and a client certificate for the nodes (without a name).
//!
//! A new cluster, new certificates: whoever held an earlier cluster's
//! files is a stranger to this one. The keys are owner-only files.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Where the files are.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Generates a CA and the certificates in `dir`, replacing any there.
    pub fn generate(dir: &Path, host: IpAddr) -> io::Result<Pki> {
        fs::create_dir_all(dir)?;
        let pki = Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        let err = |e: rcgen::Error| io::Error::other(format!("cannot make a certificate: {e}"));

        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "gcounter etcd CA");
        let ca = ca.self_signed(&ca_key).map_err(err)?;

        let leaf =
            |name: Option<&str>, sans: Vec<SanType>, usages: Vec<ExtendedKeyUsagePurpose>| {
                let key = KeyPair::generate().map_err(err)?;
                let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
                params.distinguished_name = DistinguishedName::new();
                if let Some(name) = name {
                    params.distinguished_name.push(DnType::CommonName, name);
                }
                params.subject_alt_names = sans;
                params.extended_key_usages = usages;
                let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
                Ok::<_, io::Error>((cert.pem(), key.serialize_pem()))
            };
        let mut sans = vec![SanType::IpAddress(host)];
        if host != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        sans.push(SanType::DnsName("localhost".try_into().map_err(err)?));
        // Not named like any etcd user: with --client-cert-auth, a call
        // without a token runs as the certificate's common name.
        let (server, server_key) = leaf(
            Some("gcounter-etcd-member"),
            sans,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        // No common name: with authentication on, etcd's JSON gateway
        // refuses a client certificate that has one ("CommonName of client
        // sending a request against gateway will be ignored"); the nodes
        // log in with a user instead.
        let (client, client_key) =
            leaf(None, Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth])?;
        fs::write(&pki.ca, ca.pem())?;
        fs::write(&pki.server_cert, server)?;
        fs::write(&pki.client_cert, client)?;
        write_private(&pki.server_key, &server_key)?;
        write_private(&pki.client_key, &client_key)?;
        Ok(pki)
    }
}

/// Writes an owner-only file (made so before the secret is in it).
pub(crate) fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let _ = fs::remove_file(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
