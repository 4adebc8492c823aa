"""Normalization and hashing against every verified vector in the domain files."""

from __future__ import annotations

import pytest

from capi_audit.hashing import (
    hash_value,
    is_valid_hash,
    normalize_google,
    normalize_meta,
    sha256_hex,
)

META = [
    ("em", "John_Smith@gmail.com", None, "john_smith@gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    ("ph", "(650)555-1212", "US", "16505551212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("fn", "Mary", None, "mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    ("fn", "정", None, "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
    ("fn", "Valéry", None, "valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
    ("fn", "Vale\u0301ry", None, "valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
    ("db", "2/16/1997", None, "19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    ("db", "16–2–1997", None, "19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    ("country", "United States", None, "us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
    ("em", "jsmith@example.com", None, "jsmith@example.com", "6e3913852f512d76acff15d1e402c7502a5bbe6101745a7120a2a4833ebd2350"),
    ("ph", "+1 (616) 954-78 88", None, "16169547888", "bb2fa2e6d2cea4746530c99686d0c7886ab2019875dca2d7e9e171c0e6ada00d"),
    ("ph", "+001 (616) 954-78 88", None, "16169547888", "bb2fa2e6d2cea4746530c99686d0c7886ab2019875dca2d7e9e171c0e6ada00d"),
    ("ph", "01(650)123-4567", None, "16501234567", "1f41a6876308cc581e7c096db4b342524d51f06f1df35537e30859e3956b5e89"),
    ("zp", "37221-3312", None, "37221", "4c8aef49c98ac36122e884c4bb76b30384118053921db0ffd3ec31c4f1d93a40"),
    ("st", "    California.   ", None, "ca", "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"),
    ("ct", "    Menlo-Park  ", None, "menlopark", "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"),
    ("em", "     John_Smith@gmail.com    ", None, "john_smith@gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    ("external_id", "USER_123", None, "user_123", "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"),
    ("ge", "male", None, "m", "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"),
    ("ge", "FEMALE", None, "f", "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"),
    ("ct", "newyork", None, "newyork", "350c754ba4d38897693aa077ef43072a859d23f613443133fecbbd90a3512ca5"),
    ("zp", "M1 1AE", None, "m11ae", "1dc694c2070e697769fb959b50671d76cafd430d8ca191fbdd0affcaea344ac5"),
    ("em", "test@example.com", None, "test@example.com", "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"),
]

GOOGLE = [
    ("em", "alexz@example.com", None, "alexz@example.com", "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"),
    ("em", "  ALEXZ@example.com   ", None, "alexz@example.com", "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"),
    ("ph", "+1 (800) 555-0100", None, "+18005550100", "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"),
    ("ph", "1-800-555-0100", "US", "+18005550100", "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"),
    ("fn", "Givenname", None, "givenname", "128a07bfe2df877c52076e60d7774cf5baaa046c5a6c48daf30ff43ecca2f814"),
    ("fn", "  GivenName  ", None, "givenname", "128a07bfe2df877c52076e60d7774cf5baaa046c5a6c48daf30ff43ecca2f814"),
    ("ln", "  FamilyName ", None, "familyname", "77762c287e61ce065bee5c15464012c6fbe088398b8057627d5577249430d574"),
    ("em", "Test@gmail.com", None, "test@gmail.com", "87924606b4131a8aceeeae8868531fbb9712aaa07a5d3a756b26ce0f5d6ca674"),
    ("em", "JANESaoirse@gmail.com", None, "janesaoirse@gmail.com", "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f"),
    ("em", "Jefferson.Loves.hiking@gmail.com", None, "jeffersonloveshiking@gmail.com", "515d2f967f73864e76937ab2b897210a86fd286016903b1b08c3da07c75f513e"),
    ("em", "Jefferson.LOVES.Hiking@googlemail.com", None, "jeffersonloveshiking@googlemail.com", "2824967181c781aced84c32bf8bb51fc6401202eeff88263776f63c99df9314c"),
    ("em", "cloudy.sanfrancisco+shopping@gmail.com", None, "cloudysanfrancisco@gmail.com", "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4"),
    ("em", "user.name+NYC@Example.com", None, "user.name+nyc@example.com", "f109a2a632fbcea5fc82049f50beed3d8621bf9034399f437fb622222acccdac"),
    ("ph", "+44 113 496 0987", None, "+441134960987", "0fac52d27ec377f8ad2f9de75d1f9bace693237e31868ae6f4616b8bbd0e94fb"),
    ("fn", "Alex", None, "alex", "4135aa9dc1b842a653dea846903ddb95bfb8c5a10c504a7fa16e10bc31d1fdf0"),
    ("ln", "Quinn", None, "quinn", "c512ca0c5c1e71be19f3356821e56732b5fb3ac894b0dbc5846d0b6920106fb3"),
    ("em", "janedoe+newsletter@example.com", None, "janedoe+newsletter@example.com", "e694b59643a92e56d9cd02e13104152010629de4d6fda459144d6c2b88019ade"),
    ("em", "alex.2@example.com", None, "alex.2@example.com", "97a24240e3c76dfc0abdb63a3d73468ff8d94b81fd3dc084cc32994ba4fad7fe"),
]


@pytest.mark.parametrize("key, raw, region, normalized, digest", META)
def test_meta_vectors(key, raw, region, normalized, digest):
    assert normalize_meta(key, raw, region=region) == normalized
    assert hash_value("meta", key, raw, region=region) == digest


@pytest.mark.parametrize("key, raw, region, normalized, digest", GOOGLE)
def test_google_vectors(key, raw, region, normalized, digest):
    assert normalize_google(key, raw, region=region) == normalized
    assert hash_value("google", key, raw, region=region) == digest


def test_nfd_would_not_match():
    # the NFD form, hashed without NFC, gives the wrong digest (domain/meta.md §3.1)
    assert sha256_hex("vale\u0301ry") == "0aac459e98cd41b938bef8bd61c205563f95c46cf2e6d3c8ff1a9312f3924cce"


def test_hash_validity():
    assert is_valid_hash("a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3")
    assert is_valid_hash("a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3.AQYCAQMA")
    assert not is_valid_hash("A665A45920422F9D417E4867EFDC4FB8A04A1F3FFF1FA07E998E86F7F7A27AE3")
    assert not is_valid_hash("5d41402abc4b2a76b9719d911017c592")  # MD5
    for sentinel in ("", "null", "undefined", "None", "[object Object]", "test"):
        assert not is_valid_hash(sha256_hex(sentinel))
