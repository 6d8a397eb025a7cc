//! Encryption at rest: AES-256-GCM through WebCrypto with a non-extractable key.
//!
//! Every sealed value is `iv (12 bytes) || ciphertext+tag`, with a fresh random IV per write
//! and the value's identity (for example the record's collection and id) as additional
//! authenticated data, so a ciphertext moved to another row fails to open. Anything that
//! fails to authenticate is reported as [`StoreError::Corrupt`].

use crate::platform::{fill_random, global_property, js_message};
use ferry_core::ports::StoreError;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const IV_LEN: usize = 12;

/// A non-extractable AES-GCM key.
#[derive(Clone)]
pub struct Cipher {
    key: web_sys::CryptoKey,
}

fn subtle() -> web_sys::SubtleCrypto {
    let crypto: web_sys::Crypto = global_property("crypto").unchecked_into();
    crypto.subtle()
}

fn algorithm(iv: Option<&[u8]>, aad: Option<&[u8]>) -> Object {
    let params = Object::new();
    let _ = Reflect::set(&params, &"name".into(), &"AES-GCM".into());
    if let Some(iv) = iv {
        let _ = Reflect::set(&params, &"iv".into(), &Uint8Array::from(iv));
    }
    if let Some(aad) = aad {
        let _ = Reflect::set(&params, &"additionalData".into(), &Uint8Array::from(aad));
    }
    params
}

impl Cipher {
    /// From the app's `encryptionKey`: 32 raw bytes (`Uint8Array` or `ArrayBuffer`) or an
    /// AES-GCM `CryptoKey`. Raw bytes are imported as a non-extractable key.
    pub async fn from_js(key: &JsValue) -> Result<Cipher, String> {
        if let Some(key) = key.dyn_ref::<web_sys::CryptoKey>() {
            return Ok(Cipher { key: key.clone() });
        }
        let bytes =
            if key.is_instance_of::<js_sys::ArrayBuffer>() || key.is_instance_of::<Uint8Array>() {
                Uint8Array::new(key).to_vec()
            } else {
                return Err(bad_key(
                    "encryptionKey must be a Uint8Array of 32 bytes or an AES-GCM CryptoKey",
                ));
            };
        if bytes.len() != 32 {
            return Err(bad_key(&format!(
                "encryptionKey must be 32 bytes (AES-256), got {}",
                bytes.len()
            )));
        }
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        let promise = subtle()
            .import_key_with_object(
                "raw",
                &Uint8Array::from(bytes.as_slice()),
                &algorithm(None, None),
                false,
                &usages,
            )
            .map_err(|e| bad_key(&js_message(&e)))?;
        let key = JsFuture::from(promise)
            .await
            .map_err(|e| bad_key(&js_message(&e)))?;
        Ok(Cipher {
            key: key.unchecked_into(),
        })
    }

    /// Encrypts `plain`, bound to `aad`.
    pub async fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv);
        let params = algorithm(Some(&iv), Some(aad.as_bytes()));
        let promise = subtle()
            .encrypt_with_object_and_u8_array(&params, &self.key, plain)
            .map_err(|e| StoreError::Other(format!("encryption failed: {}", js_message(&e))))?;
        let sealed = JsFuture::from(promise)
            .await
            .map_err(|e| StoreError::Other(format!("encryption failed: {}", js_message(&e))))?;
        let mut out = iv.to_vec();
        out.extend(Uint8Array::new(&sealed).to_vec());
        Ok(out)
    }

    /// Decrypts what [`Cipher::seal`] made for the same `aad`; anything else is `Corrupt`.
    pub async fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < IV_LEN + 16 {
            return Err(StoreError::Corrupt(format!(
                "sealed value of {aad:?} is too short"
            )));
        }
        let params = algorithm(Some(&sealed[..IV_LEN]), Some(aad.as_bytes()));
        let promise = subtle()
            .decrypt_with_object_and_u8_array(&params, &self.key, &sealed[IV_LEN..])
            .map_err(|e| StoreError::Other(format!("decryption failed: {}", js_message(&e))))?;
        let plain = JsFuture::from(promise).await.map_err(|_| {
            StoreError::Corrupt(format!(
                "a stored value ({aad}) failed to authenticate: it was changed or the key is wrong"
            ))
        })?;
        Ok(Uint8Array::new(&plain).to_vec())
    }
}

fn bad_key(message: &str) -> String {
    format!("invalid encryptionKey: {message}")
}
