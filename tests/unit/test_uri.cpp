// Tests of the uri module: every case of Nim's tests/stdlib/turi.nim and of the runnable
// examples in uri.nim, the reference resolution examples of RFC 3986 section 5.4, and
// malformed input.
#include <asynchttp/uri.hpp>

#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <string_view>

namespace asynchttp {
namespace {

using detail::removeDotSegments;

// --- encodeUrl / decodeUrl ----------------------------------------------------------------

TEST(EncodeDecodeUrl, NimRoundTrip) {
  const std::string test1 = "abc\n+def xyz";
  EXPECT_EQ(encodeUrl(test1), "abc%0A%2Bdef+xyz");
  EXPECT_EQ(decodeUrl(encodeUrl(test1)), test1);
  EXPECT_EQ(encodeUrl(test1, false), "abc%0A%2Bdef%20xyz");
  EXPECT_EQ(decodeUrl(encodeUrl(test1, false), false), test1);
}

TEST(EncodeDecodeUrl, NimExamples) {
  EXPECT_EQ(encodeUrl("https://nim-lang.org"), "https%3A%2F%2Fnim-lang.org");
  EXPECT_EQ(encodeUrl("https://nim-lang.org/this is a test"),
            "https%3A%2F%2Fnim-lang.org%2Fthis+is+a+test");
  EXPECT_EQ(encodeUrl("https://nim-lang.org/this is a test", false),
            "https%3A%2F%2Fnim-lang.org%2Fthis%20is%20a%20test");
  EXPECT_EQ(decodeUrl("https%3A%2F%2Fnim-lang.org"), "https://nim-lang.org");
  EXPECT_EQ(decodeUrl("https%3A%2F%2Fnim-lang.org%2Fthis+is+a+test"),
            "https://nim-lang.org/this is a test");
  EXPECT_EQ(decodeUrl("https%3A%2F%2Fnim-lang.org%2Fthis%20is%20a%20test", false),
            "https://nim-lang.org/this is a test");
  EXPECT_EQ(decodeUrl("abc%xyz"), "abc%xyz");
}

TEST(EncodeDecodeUrl, UnreservedAndHighBytes) {
  EXPECT_EQ(encodeUrl("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(encodeUrl("\xff\x80"), "%FF%80");
  EXPECT_EQ(encodeUrl(std::string_view("\0", 1)), "%00");
  EXPECT_EQ(decodeUrl("%ff%FF%c3%A9"), "\xff\xff\xc3\xa9");
  EXPECT_EQ(decodeUrl("%00"), std::string(1, '\0'));
}

TEST(EncodeDecodeUrl, PlusKeptWithoutDecodePlus) {
  EXPECT_EQ(decodeUrl("a+b"), "a b");
  EXPECT_EQ(decodeUrl("a+b", false), "a+b");
}

TEST(EncodeDecodeUrl, MalformedEscapesKeptAsIs) {
  EXPECT_EQ(decodeUrl("%"), "%");
  EXPECT_EQ(decodeUrl("abc%"), "abc%");
  EXPECT_EQ(decodeUrl("abc%4"), "abc%4");
  EXPECT_EQ(decodeUrl("%4g"), "%4g");
  EXPECT_EQ(decodeUrl("%g4"), "%g4");
  EXPECT_EQ(decodeUrl("%%41"), "%A");
  EXPECT_EQ(decodeUrl("%41%"), "A%");
  EXPECT_EQ(decodeUrl("%+"), "% ");
}

// --- parseUri: Nim's blocks ---------------------------------------------------------------

TEST(ParseUri, Ipv6WithPort) {
  const std::string org = "udp://[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:8080";
  const Uri url = parseUri(org);
  EXPECT_EQ(url.hostname, "2001:0db8:85a3:0000:0000:8a2e:0370:7334");
  EXPECT_TRUE(url.isIpv6);
  EXPECT_EQ(url.port, "8080");
  const Uri newUrl = parseUri(to_string(url));
  EXPECT_EQ(newUrl.hostname, "2001:0db8:85a3:0000:0000:8a2e:0370:7334");
  EXPECT_EQ(to_string(url), org);
}

TEST(ParseUri, HostWithoutPath) {
  EXPECT_EQ(parseUri("http://localhost").path, "");
}

TEST(ParseUri, HostWithRootPath) {
  EXPECT_EQ(parseUri("http://localhost/").path, "/");
}

TEST(ParseUri, HostPortPath) {
  const std::string str = "http://localhost:8080/test";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "http");
  EXPECT_EQ(test.port, "8080");
  EXPECT_EQ(test.path, "/test");
  EXPECT_EQ(test.hostname, "localhost");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, AllParts) {
  const std::string str =
      "foo://username:password@example.com:8042/over/there/index.dtb?type=animal&name=narwhal#nose";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "foo");
  EXPECT_EQ(test.username, "username");
  EXPECT_EQ(test.password, "password");
  EXPECT_EQ(test.hostname, "example.com");
  EXPECT_EQ(test.port, "8042");
  EXPECT_EQ(test.path, "/over/there/index.dtb");
  EXPECT_EQ(test.query, "type=animal&name=narwhal");
  EXPECT_EQ(test.anchor, "nose");
  EXPECT_FALSE(test.opaque);
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, Ipv6AllParts) {
  const std::string str = "foo://[::1]:1234/bar?baz=true&qux#quux";
  const Uri uri = parseUri(str);
  EXPECT_EQ(uri.scheme, "foo");
  EXPECT_EQ(uri.hostname, "::1");
  EXPECT_EQ(uri.port, "1234");
  EXPECT_EQ(uri.path, "/bar");
  EXPECT_EQ(uri.query, "baz=true&qux");
  EXPECT_EQ(uri.anchor, "quux");
  EXPECT_EQ(to_string(uri), str);
}

TEST(ParseUri, Urn) {
  const std::string str = "urn:example:animal:ferret:nose";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "urn");
  EXPECT_EQ(test.path, "example:animal:ferret:nose");
  EXPECT_TRUE(test.opaque);
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, Mailto) {
  const std::string str = "mailto:username@example.com?subject=Topic";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "mailto");
  EXPECT_EQ(test.username, "username");
  EXPECT_EQ(test.hostname, "example.com");
  EXPECT_EQ(test.path, "");
  EXPECT_EQ(test.query, "subject=Topic");
  EXPECT_TRUE(test.opaque);
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, Magnet) {
  const std::string str = "magnet:?xt=urn:sha1:72hsga62ba515sbd62&dn=foobar";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "magnet");
  EXPECT_EQ(test.query, "xt=urn:sha1:72hsga62ba515sbd62&dn=foobar");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, OriginForm) {
  const std::string str = "/test/foo/bar?q=2#asdf";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "");
  EXPECT_EQ(test.path, "/test/foo/bar");
  EXPECT_EQ(test.query, "q=2");
  EXPECT_EQ(test.anchor, "asdf");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, RelativeWithoutSlash) {
  const std::string str = "test/no/slash";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.path, "test/no/slash");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, NetworkPathWithLenientPort) {
  const std::string str = "//git@github.com:dom96/packages";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "");
  EXPECT_EQ(test.username, "git");
  EXPECT_EQ(test.hostname, "github.com");
  EXPECT_EQ(test.port, "dom96");
  EXPECT_EQ(test.path, "/packages");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, FileWithEmptyAuthority) {
  const std::string str = "file:///foo/bar/baz.txt";
  const Uri test = parseUri(str);
  EXPECT_EQ(test.scheme, "file");
  EXPECT_EQ(test.username, "");
  EXPECT_EQ(test.hostname, "");
  EXPECT_EQ(test.port, "");
  EXPECT_EQ(test.path, "/foo/bar/baz.txt");
  EXPECT_EQ(to_string(test), str);
}

TEST(ParseUri, Bug17481DotRelativePaths) {
  const Uri u1 = parseUri("./");
  const Uri u2 = parseUri("./path");
  const Uri u3 = parseUri("a/path");
  EXPECT_EQ(u1.scheme, "");
  EXPECT_EQ(u1.path, "./");
  EXPECT_EQ(u2.scheme, "");
  EXPECT_EQ(u2.path, "./path");
  EXPECT_EQ(u3.scheme, "");
  EXPECT_EQ(u3.path, "a/path");
}

TEST(ParseUri, NimExamples) {
  const Uri res = parseUri("sftp://127.0.0.1:4343");
  EXPECT_TRUE(isAbsolute(res));
  EXPECT_EQ(res.port, "4343");

  Uri reused = initUri();
  reused.anchor = "stale";
  parseUri("https://nim-lang.org/docs/manual.html", reused);
  EXPECT_EQ(reused.scheme, "https");
  EXPECT_EQ(reused.hostname, "nim-lang.org");
  EXPECT_EQ(reused.path, "/docs/manual.html");
  EXPECT_EQ(reused.anchor, "");

  const Uri ftp = parseUri("ftp://Username:Password@Hostname");
  EXPECT_EQ(ftp.username, "Username");
  EXPECT_EQ(ftp.password, "Password");
  EXPECT_EQ(ftp.scheme, "ftp");
}

// --- parseUri: beyond Nim's tests ---------------------------------------------------------

TEST(ParseUri, EmptyString) {
  EXPECT_EQ(parseUri(""), initUri());
}

TEST(ParseUri, AsteriskFormIsAPath) {
  EXPECT_EQ(parseUri("*").path, "*");
}

TEST(ParseUri, QueryAndAnchorOnly) {
  const Uri q = parseUri("?a=1#frag?x#y");
  EXPECT_EQ(q.path, "");
  EXPECT_EQ(q.query, "a=1");
  EXPECT_EQ(q.anchor, "frag?x#y");
  const Uri a = parseUri("#only");
  EXPECT_EQ(a.query, "");
  EXPECT_EQ(a.anchor, "only");
}

TEST(ParseUri, AnchorBeforeQuestionMark) {
  const Uri u = parseUri("/p#a?b");
  EXPECT_EQ(u.path, "/p");
  EXPECT_EQ(u.query, "");
  EXPECT_EQ(u.anchor, "a?b");
}

TEST(ParseUri, AuthorityEndsAtQueryOrAnchor) {
  const Uri q = parseUri("http://h:1?x");
  EXPECT_EQ(q.hostname, "h");
  EXPECT_EQ(q.port, "1");
  EXPECT_EQ(q.path, "");
  EXPECT_EQ(q.query, "x");
  const Uri a = parseUri("http://h#x");
  EXPECT_EQ(a.hostname, "h");
  EXPECT_EQ(a.anchor, "x");
}

TEST(ParseUri, PasswordKeepsColons) {
  const Uri u = parseUri("http://user:pa:ss@host/");
  EXPECT_EQ(u.username, "user");
  EXPECT_EQ(u.password, "pa:ss");
  EXPECT_EQ(to_string(u), "http://user:pa:ss@host/");
}

TEST(ParseUri, LastAtEndsUserInfo) {
  const Uri u = parseUri("mailto:a@b,c@example.com");
  EXPECT_EQ(u.username, "a@b,c");
  EXPECT_EQ(u.hostname, "example.com");
  EXPECT_EQ(to_string(u), "mailto:a@b,c@example.com");
}

// Found by fuzz_uri (fuzz/corpus/uri/crash-mailto-host-trailing-slash): the printer dropped the
// "/" that ends a mailto address, so the printed URI parsed as another.
TEST(ParseUri, MailtoAddressEndingInSlashPrintsAsParsed) {
  const Uri u = parseUri("mailto:a/");
  EXPECT_EQ(u.hostname, "a/");
  EXPECT_EQ(to_string(u), "mailto:a/");
  EXPECT_EQ(parseUri(to_string(u)), u);
}

// Found by fuzz_uri: "mailto://" has an authority, and its path was split as a second one.
TEST(ParseUri, MailtoWithAnAuthorityKeepsItsPath) {
  const Uri u = parseUri("mailto://host/a@b");
  EXPECT_EQ(u.hostname, "host");
  EXPECT_EQ(u.path, "/a@b");
  EXPECT_EQ(parseUri(to_string(u)), u);
}

// Found by fuzz_uri: an empty user info before an address starting "//" was dropped, and the
// printed URI read as one with an authority.
TEST(ParseUri, MailtoEmptyUserInfoBeforeSlashesStays) {
  const Uri u = parseUri("mailto:@//d");
  EXPECT_EQ(u.hostname, "//d");
  EXPECT_EQ(to_string(u), "mailto:@//d");
  EXPECT_EQ(parseUri(to_string(u)), u);
}

TEST(ParseUri, MailtoSchemeIsCaseInsensitive) {
  const Uri u = parseUri("MailTo:someone@example.org");
  EXPECT_EQ(u.username, "someone");
  EXPECT_EQ(u.hostname, "example.org");
  EXPECT_EQ(u.path, "");
}

TEST(ParseUri, Ipv6WithoutPortAndWithUserInfo) {
  const Uri u = parseUri("http://me@[fe80::1%25eth0]/x");
  EXPECT_EQ(u.username, "me");
  EXPECT_EQ(u.hostname, "fe80::1%25eth0");
  EXPECT_EQ(u.port, "");
  EXPECT_TRUE(u.isIpv6);
  EXPECT_EQ(to_string(u), "http://me@[fe80::1%25eth0]/x");
}

TEST(ParseUri, NonAsciiBytesAreAccepted) {
  const Uri u = parseUri("/caf\xc3\xa9?q=\xe2\x82\xac");
  EXPECT_EQ(u.path, "/caf\xc3\xa9");
  EXPECT_EQ(u.query, "q=\xe2\x82\xac");
}

TEST(ParseUri, ColonAfterFirstSlashIsPath) {
  const Uri u = parseUri("a/b:c");
  EXPECT_EQ(u.scheme, "");
  EXPECT_EQ(u.path, "a/b:c");
}

TEST(ParseUri, OpaqueSchemeWithoutAuthority) {
  const Uri u = parseUri("localhost:8080");
  EXPECT_EQ(u.scheme, "localhost");
  EXPECT_EQ(u.path, "8080");
  EXPECT_TRUE(u.opaque);
  EXPECT_EQ(to_string(u), "localhost:8080");
}

TEST(ParseUri, StreamOperatorWritesToString) {
  std::ostringstream os;
  os << parseUri("https://nim-lang.org/a?b#c");
  EXPECT_EQ(os.str(), "https://nim-lang.org/a?b#c");
}

// --- Malformed input ----------------------------------------------------------------------

struct MalformedCase {
  std::string input;
  std::string messagePart;
};

class MalformedUri : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedUri, ThrowsUriParseError) {
  const MalformedCase& c = GetParam();
  try {
    (void)parseUri(c.input);
    ADD_FAILURE() << "no exception for '" << c.input << "'";
  } catch (const UriParseError& e) {
    EXPECT_NE(std::string(e.what()).find(c.messagePart), std::string::npos) << e.what();
  }
}

const MalformedCase malformedCases[] = {
    {"http://[::1/x", "unterminated IPv6 literal"},
    {"http://[::1", "unterminated IPv6 literal"},
    {"//[::1:80", "unterminated IPv6 literal"},
    {"http://[]/", "empty IPv6 literal"},
    {"http://[[::1]]/", "nested '['"},
    {"http://[::1]x/", "after IPv6 literal"},
    {"http://[::1]8080/", "after IPv6 literal"},
    {"http://[::1]:80]/", "in port"},
    {"http://a]b/", "outside an IPv6 literal"},
    {"http://ab[::1]/", "outside an IPv6 literal"},
    {"http://host:[80]/", "outside an IPv6 literal"},
    {"http://u[x]@host/", "user info"},
    {"mailto:[x", "unterminated IPv6 literal"},
    {":no-scheme", "empty scheme"},
    {"http://a b/", "invalid character 0x20 at index 8"},
    {"/a b", "invalid character 0x20"},
    {"/a\nb", "invalid character 0x0A"},
    {"/a\r\nb", "invalid character 0x0D"},
    {"/a\tb", "invalid character 0x09"},
    {"/\x7f", "invalid character 0x7F"},
    {std::string("/a\0b", 4), "invalid character 0x00"},
    {"http://h/?q=a b", "invalid character 0x20"},
    {"http://h/#\x1b", "invalid character 0x1B"},
};

INSTANTIATE_TEST_SUITE_P(Uri, MalformedUri, ::testing::ValuesIn(malformedCases));

TEST(MalformedUri, MessageEscapesControlBytesAndIsBounded) {
  try {
    (void)parseUri("/a\r\nX-Injected: 1\\");
    ADD_FAILURE() << "no exception";
  } catch (const UriParseError& e) {
    EXPECT_STREQ(e.what(),
                 "invalid character 0x0D at index 2 in URI '/a\\x0D\\x0AX-Injected: 1\\x5C'");
  }
  try {
    (void)parseUri("/" + std::string(100000, 'a') + " ");
    ADD_FAILURE() << "no exception";
  } catch (const UriParseError& e) {
    EXPECT_LT(std::string(e.what()).size(), 300U);
  }
}

TEST(MalformedUri, ErrorIsAValueError) {
  EXPECT_THROW((void)parseUri("http://[::1/x"), ValueError);
  EXPECT_THROW((void)parseUri("http://[::1/x"), std::invalid_argument);
}

// Arbitrary short strings either parse or throw UriParseError, and whatever parses survives
// printing and parsing again unchanged (the sanitizers watch the memory accesses).
TEST(MalformedUri, RandomInputNeverCrashesAndReparses) {
  constexpr std::string_view alphabet = "a1:/?#@[]%.+-=& \x01";
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> length(0, 14);
  int parsed = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string input;
    for (int k = length(rng); k > 0; --k) input += alphabet[pick(rng)];
    Uri uri;
    try {
      uri = parseUri(input);
    } catch (const UriParseError&) {
      continue;
    }
    ++parsed;
    const std::string text = to_string(uri);
    EXPECT_EQ(parseUri(text), uri) << "input '" << input << "' printed as '" << text << "'";
  }
  EXPECT_GT(parsed, 1000);
}

// --- to_string (Nim's `$`) ----------------------------------------------------------------

TEST(ToString, NimExample) {
  EXPECT_EQ(to_string(parseUri("https://nim-lang.org")), "https://nim-lang.org");
}

TEST(ToString, Bug6649And6652HostnameWithTrailingSlash) {
  Uri foo = parseUri("http://example.com");
  foo.hostname = "example.com";
  foo.path = "baz";
  EXPECT_EQ(to_string(foo), "http://example.com/baz");

  foo.hostname = "example.com/";
  foo.path = "baz";
  EXPECT_EQ(to_string(foo), "http://example.com/baz");

  foo.hostname = "example.com";
  foo.path = "/baz";
  EXPECT_EQ(to_string(foo), "http://example.com/baz");

  foo.hostname = "example.com/";
  foo.path = "/baz";
  EXPECT_EQ(to_string(foo), "http://example.com/baz");

  foo.hostname = "example.com/";
  foo.port = "8000";
  foo.path = "baz";
  EXPECT_EQ(to_string(foo), "http://example.com:8000/baz");

  foo = parseUri("file:/dir/file");
  foo.path = "relative";
  EXPECT_EQ(to_string(foo), "file:relative");
}

TEST(ToString, InitUriIpv6) {
  Uri uri2 = initUri(true);
  uri2.scheme = "tcp";
  uri2.hostname = "2001:0db8:85a3:0000:0000:8a2e:0370:7334";
  uri2.port = "8080";
  EXPECT_EQ(to_string(uri2), "tcp://[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:8080");
}

TEST(ToString, InitUriIsEmpty) {
  const Uri u = initUri();
  EXPECT_EQ(u, Uri{});
  EXPECT_FALSE(u.isIpv6);
  EXPECT_TRUE(initUri(true).isIpv6);
  EXPECT_EQ(to_string(u), "");
}

TEST(ToString, PathsThatWouldReadAsAuthorityOrScheme) {
  const Uri doubleSlash = parseUri("////x");
  EXPECT_EQ(doubleSlash.hostname, "");
  EXPECT_EQ(doubleSlash.path, "//x");
  EXPECT_EQ(to_string(doubleSlash), "////x");
  const Uri colon = combine(parseUri("x"), parseUri("./a:b"));
  EXPECT_EQ(colon.path, "a:b");
  EXPECT_EQ(to_string(colon), "./a:b");
  EXPECT_EQ(parseUri(to_string(colon)).path, "./a:b");
}

TEST(ToString, PasswordWithoutUsername) {
  const Uri u = parseUri("//:secret@host/");
  EXPECT_EQ(u.username, "");
  EXPECT_EQ(u.password, "secret");
  EXPECT_EQ(to_string(u), "//:secret@host/");
}

// --- Equality -----------------------------------------------------------------------------

TEST(UriEquality, ComparesEveryField) {
  const Uri a = parseUri("http://u:p@h:1/p?q#f");
  EXPECT_EQ(a, parseUri("http://u:p@h:1/p?q#f"));
  EXPECT_NE(a, parseUri("http://u:p@h:1/p?q#g"));
  EXPECT_NE(parseUri("http://[::1]/"), parseUri("http://::1/"));
  EXPECT_NE(parseUri("a:b"), parseUri("a://b"));
}

// --- combine ------------------------------------------------------------------------------

TEST(Combine, TrailingSlashOnBase) {
  const Uri concat = combine(parseUri("http://google.com/foo/bar/"), parseUri("baz"));
  EXPECT_EQ(concat.path, "/foo/bar/baz");
  EXPECT_EQ(concat.hostname, "google.com");
  EXPECT_EQ(concat.scheme, "http");
}

TEST(Combine, AbsolutePathReference) {
  const Uri concat = combine(parseUri("http://google.com/foo"), parseUri("/baz"));
  EXPECT_EQ(concat.path, "/baz");
  EXPECT_EQ(concat.hostname, "google.com");
  EXPECT_EQ(concat.scheme, "http");
}

TEST(Combine, NimPathCases) {
  EXPECT_EQ(combine(parseUri("http://google.com/foo/test"), parseUri("bar")).path, "/foo/bar");
  EXPECT_EQ(combine(parseUri("http://google.com/foo/test"), parseUri("/bar")).path, "/bar");
  EXPECT_EQ(combine(parseUri("http://google.com/foo/test/"), parseUri("bar")).path,
            "/foo/test/bar");
  EXPECT_EQ(combine(parseUri("http://google.com/foo/test/"), parseUri("bar/")).path,
            "/foo/test/bar/");
}

TEST(Combine, ThreeUris) {
  const Uri concat =
      combine(parseUri("http://google.com/foo/test/"), parseUri("bar/"), parseUri("baz"));
  EXPECT_EQ(concat.path, "/foo/test/bar/baz");
}

TEST(Combine, NimExamples) {
  EXPECT_EQ(combine(parseUri("https://nim-lang.org/foo/bar"), parseUri("/baz")).path, "/baz");
  EXPECT_EQ(combine(parseUri("https://nim-lang.org/foo/bar"), parseUri("baz")).path, "/foo/baz");
  EXPECT_EQ(combine(parseUri("https://nim-lang.org/foo/bar/"), parseUri("baz")).path,
            "/foo/bar/baz");
  const Uri foo =
      combine(parseUri("https://nim-lang.org/"), parseUri("docs/"), parseUri("manual.html"));
  EXPECT_EQ(foo.hostname, "nim-lang.org");
  EXPECT_EQ(foo.path, "/docs/manual.html");
}

TEST(Combine, InitializerList) {
  const Uri foo = combine({parseUri("https://nim-lang.org/"), parseUri("docs/"), parseUri("x/"),
                           parseUri("../manual.html")});
  EXPECT_EQ(to_string(foo), "https://nim-lang.org/docs/manual.html");
  EXPECT_EQ(combine({parseUri("http://a/b")}), parseUri("http://a/b"));
  EXPECT_EQ(combine({}), initUri());
}

TEST(Combine, Bug3207OtherScheme) {
  EXPECT_EQ(to_string(combine(parseUri("http://qq/1"), parseUri("https://qqq"))), "https://qqq");
}

TEST(Combine, KeepsIpv6Host) {
  EXPECT_EQ(to_string(combine(parseUri("http://[::1]:8080/a/b"), parseUri("c"))),
            "http://[::1]:8080/a/c");
  EXPECT_EQ(to_string(combine(parseUri("http://h/a"), parseUri("//[::2]/x"))), "http://[::2]/x");
}

TEST(Combine, OpaqueBaseStaysOpaque) {
  EXPECT_EQ(to_string(combine(parseUri("file:/dir/file"), parseUri("other"))), "file:/dir/other");
}

TEST(Combine, NetworkPathReferenceKeepsUserInfo) {
  EXPECT_EQ(to_string(combine(parseUri("https://a/b"), parseUri("//u:p@h:81/../x?y#z"))),
            "https://u:p@h:81/x?y#z");
}

struct ResolutionCase {
  std::string reference;
  std::string expected;
};

class Rfc3986Resolution : public ::testing::TestWithParam<ResolutionCase> {};

TEST_P(Rfc3986Resolution, AgainstBase) {
  const Uri base = parseUri("http://a/b/c/d;p?q");
  const ResolutionCase& c = GetParam();
  EXPECT_EQ(to_string(combine(base, parseUri(c.reference))), c.expected)
      << "reference '" << c.reference << "'";
}

// RFC 3986 section 5.4.1.
const ResolutionCase normalExamples[] = {
    {"g:h", "g:h"},
    {"g", "http://a/b/c/g"},
    {"./g", "http://a/b/c/g"},
    {"g/", "http://a/b/c/g/"},
    {"/g", "http://a/g"},
    {"//g", "http://g"},
    {"?y", "http://a/b/c/d;p?y"},
    {"g?y", "http://a/b/c/g?y"},
    {"#s", "http://a/b/c/d;p?q#s"},
    {"g#s", "http://a/b/c/g#s"},
    {"g?y#s", "http://a/b/c/g?y#s"},
    {";x", "http://a/b/c/;x"},
    {"g;x", "http://a/b/c/g;x"},
    {"g;x?y#s", "http://a/b/c/g;x?y#s"},
    {"", "http://a/b/c/d;p?q"},
    {".", "http://a/b/c/"},
    {"./", "http://a/b/c/"},
    {"..", "http://a/b/"},
    {"../", "http://a/b/"},
    {"../g", "http://a/b/g"},
    {"../..", "http://a/"},
    {"../../", "http://a/"},
    {"../../g", "http://a/g"},
};

// RFC 3986 section 5.4.2. For "http:g" the RFC allows "http:g" (strict) or, as here and in
// Nim, the backward-compatible "http://a/b/c/g".
const ResolutionCase abnormalExamples[] = {
    {"../../../g", "http://a/g"},
    {"../../../../g", "http://a/g"},
    {"/./g", "http://a/g"},
    {"/../g", "http://a/g"},
    {"g.", "http://a/b/c/g."},
    {".g", "http://a/b/c/.g"},
    {"g..", "http://a/b/c/g.."},
    {"..g", "http://a/b/c/..g"},
    {"./../g", "http://a/b/g"},
    {"./g/.", "http://a/b/c/g/"},
    {"g/./h", "http://a/b/c/g/h"},
    {"g/../h", "http://a/b/c/h"},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
    {"g;x=1/../y", "http://a/b/c/y"},
    {"g?y/./x", "http://a/b/c/g?y/./x"},
    {"g?y/../x", "http://a/b/c/g?y/../x"},
    {"g#s/./x", "http://a/b/c/g#s/./x"},
    {"g#s/../x", "http://a/b/c/g#s/../x"},
    {"http:g", "http://a/b/c/g"},
};

INSTANTIATE_TEST_SUITE_P(Normal, Rfc3986Resolution, ::testing::ValuesIn(normalExamples));
INSTANTIATE_TEST_SUITE_P(Abnormal, Rfc3986Resolution, ::testing::ValuesIn(abnormalExamples));

// --- operator/ (Nim's `/`) ----------------------------------------------------------------

TEST(SlashOperator, NimCases) {
  EXPECT_EQ((parseUri("http://example.com/foo") / "bar/asd").path, "/foo/bar/asd");
  EXPECT_EQ((parseUri("http://example.com/foo/") / "/bar/asd").path, "/foo/bar/asd");
}

TEST(SlashOperator, Bug4959EmptyBasePath) {
  EXPECT_EQ((parseUri("http://example.com") / "/baz").path, "/baz");
}

TEST(SlashOperator, BugFoundOnStream) {
  EXPECT_EQ(to_string(parseUri("http://localhost:9515") / "status"),
            "http://localhost:9515/status");
}

TEST(SlashOperator, NimExamples) {
  const Uri host = parseUri("https://nim-lang.org");
  EXPECT_EQ(to_string(host), "https://nim-lang.org");
  EXPECT_EQ(to_string(host / "/blog.html"), "https://nim-lang.org/blog.html");
  EXPECT_EQ(to_string(host / "blog2.html"), "https://nim-lang.org/blog2.html");
  EXPECT_EQ((parseUri("https://nim-lang.org/foo/bar") / "/baz").path, "/foo/bar/baz");
  EXPECT_EQ((parseUri("https://nim-lang.org/foo/bar") / "baz").path, "/foo/bar/baz");
  EXPECT_EQ((parseUri("https://nim-lang.org/foo/bar/") / "baz").path, "/foo/bar/baz");
}

TEST(SlashOperator, EmptyPieces) {
  EXPECT_EQ((parseUri("http://h") / "").path, "/");
  EXPECT_EQ((parseUri("http://h/a") / "").path, "/a/");
  EXPECT_EQ((parseUri("http://h/a/") / "").path, "/a/");
  EXPECT_EQ((parseUri("http://h/a") / "/").path, "/a/");
}

// --- removeDotSegments --------------------------------------------------------------------

TEST(RemoveDotSegments, NimCases) {
  EXPECT_EQ(removeDotSegments("/foo/bar/baz"), "/foo/bar/baz");
  EXPECT_EQ(removeDotSegments(""), "");
  EXPECT_EQ(removeDotSegments("a1/a2/../a3/a4/a5/./a6/a7/././"), "a1/a3/a4/a5/a6/a7/");
  EXPECT_EQ(removeDotSegments("https://a1/a2/../a3/a4/a5/./a6/a7/././"),
            "https://a1/a3/a4/a5/a6/a7/");
  EXPECT_EQ(removeDotSegments("http://a1/a2"), "http://a1/a2");
  EXPECT_EQ(removeDotSegments("http://www.ai."), "http://www.ai.");
}

// Nim keeps "." (its test says so) and gets these wrong (its test marks them "xxx buggy");
// here they follow RFC 3986 section 5.2.4.
TEST(RemoveDotSegments, CasesNimGetsWrong) {
  EXPECT_EQ(removeDotSegments("."), "");
  // Nim's runnable example drops the empty segment of ".//" and gives "a1/a3/a4/a5/a6/a7/".
  EXPECT_EQ(removeDotSegments("a1/a2/../a3/a4/a5/./a6/a7/.//./"), "a1/a3/a4/a5/a6/a7//");
  EXPECT_EQ(removeDotSegments(".."), "");
  EXPECT_EQ(removeDotSegments("http://www.ai./"), "http://www.ai./");
  EXPECT_EQ(removeDotSegments("a/b.../c"), "a/b.../c");
  EXPECT_EQ(removeDotSegments("a/b../c"), "a/b../c");
  EXPECT_EQ(removeDotSegments("a/.../c"), "a/.../c");
  EXPECT_EQ(removeDotSegments("a//../b"), "a/b");
  EXPECT_EQ(removeDotSegments("a/b/c//"), "a/b/c//");
}

TEST(RemoveDotSegments, Rfc3986Examples) {
  EXPECT_EQ(removeDotSegments("/a/b/c/./../../g"), "/a/g");
  EXPECT_EQ(removeDotSegments("mid/content=5/../6"), "mid/6");
  EXPECT_EQ(removeDotSegments("/.."), "/");
  EXPECT_EQ(removeDotSegments("/."), "/");
  EXPECT_EQ(removeDotSegments("/../../.."), "/");
  EXPECT_EQ(removeDotSegments("../a"), "a");
  EXPECT_EQ(removeDotSegments("/a/b/.."), "/a/");
}

// --- isAbsolute ---------------------------------------------------------------------------

struct AbsoluteCase {
  std::string uri;
  bool absolute;
};

class IsAbsolute : public ::testing::TestWithParam<AbsoluteCase> {};

TEST_P(IsAbsolute, NimCases) {
  EXPECT_EQ(isAbsolute(parseUri(GetParam().uri)), GetParam().absolute) << GetParam().uri;
}

const AbsoluteCase absoluteCases[] = {
    {"www.google.com", false},
    {"http://www.google.com", true},
    {"file:/dir/file", true},
    {"file://localhost/dir/file", true},
    {"urn:ISSN:1535-3613", true},
    // path-relative URL
    {"about", false},
    {"about/staff.html", false},
    {"about/staff.html?", false},
    {"about/staff.html?parameters", false},
    // absolute-path-relative URL
    {"/", false},
    {"/about", false},
    {"/about/staff.html", false},
    {"/about/staff.html?", false},
    {"/about/staff.html?parameters", false},
    // scheme-relative URL
    {"//username:password@example.com:8888", false},
    {"//username@example.com", false},
    {"//example.com", false},
    {"//example.com/", false},
    {"//example.com/about", false},
    {"//example.com/about/staff.html", false},
    {"//example.com/about/staff.html?", false},
    {"//example.com/about/staff.html?parameters", false},
    // absolute URL
    {"https://username:password@example.com:8888", true},
    {"https://username@example.com", true},
    {"https://example.com", true},
    {"https://example.com/", true},
    {"https://example.com/about", true},
    {"https://example.com/about/staff.html", true},
    {"https://example.com/about/staff.html?", true},
    {"https://example.com/about/staff.html?parameters", true},
    // Nim's runnable examples
    {"https://nim-lang.org", true},
    {"nim-lang", false},
};

INSTANTIATE_TEST_SUITE_P(Uri, IsAbsolute, ::testing::ValuesIn(absoluteCases));

// --- encodeQuery / withQuery (Nim's `?`) --------------------------------------------------

TEST(EncodeQuery, NimCases) {
  EXPECT_EQ(encodeQuery({}), "");
  EXPECT_EQ(encodeQuery({{"foo", "bar"}}), "foo=bar");
  EXPECT_EQ(encodeQuery({{"foo", "bar & baz"}}), "foo=bar+%26+baz");
  EXPECT_EQ(encodeQuery({{"foo", "bar & baz"}}, false), "foo=bar%20%26%20baz");
  EXPECT_EQ(encodeQuery({{"foo", ""}}), "foo");
  EXPECT_EQ(encodeQuery({{"foo", ""}}, true, false), "foo=");
  EXPECT_EQ(encodeQuery({{"a", "1"}, {"b", ""}, {"c", "3"}}), "a=1&b&c=3");
  EXPECT_EQ(encodeQuery({{"a", "1"}, {"b", ""}, {"c", "3"}}, true, false), "a=1&b=&c=3");
  EXPECT_EQ(encodeQuery({{"a", "1"}, {"b", "2"}}), "a=1&b=2");
}

TEST(EncodeQuery, VectorAndSeparator) {
  const QueryPairs pairs = {{"a b", "1=2"}, {"c", "&"}};
  EXPECT_EQ(encodeQuery(pairs), "a+b=1%3D2&c=%26");
  EXPECT_EQ(encodeQuery(pairs, true, true, ';'), "a+b=1%3D2;c=%26");
  EXPECT_EQ(encodeQuery(QueryPairs{}), "");
}

TEST(WithQuery, NimCases) {
  EXPECT_EQ(withQuery(parseUri("http://example.com") / "foo", {{"bar", "1"}, {"baz", "qux"}}),
            parseUri("http://example.com/foo?bar=1&baz=qux"));
  EXPECT_EQ(withQuery(parseUri("http://example.com") / "foo", {{"do", "do"}, {"bar", ""}}),
            parseUri("http://example.com/foo?do=do&bar"));
  EXPECT_EQ(to_string(withQuery(parseUri("https://example.com") / "foo", {{"bar", "qux"}})),
            "https://example.com/foo?bar=qux");
}

TEST(WithQuery, ReplacesQueryFromVector) {
  const QueryPairs pairs = {{"k", "v w"}};
  EXPECT_EQ(to_string(withQuery(parseUri("/p?old=1#f"), pairs)), "/p?k=v+w#f");
}

// --- getDataUri ---------------------------------------------------------------------------

TEST(GetDataUri, NimCases) {
  EXPECT_EQ(getDataUri("", "text/plain"), "data:text/plain;charset=utf-8;base64,");
  EXPECT_EQ(getDataUri(" ", "text/plain"), "data:text/plain;charset=utf-8;base64,IA==");
  EXPECT_EQ(getDataUri("c\xf7>", "text/plain"), "data:text/plain;charset=utf-8;base64,Y/c+");
  EXPECT_EQ(getDataUri("Hello World", "text/plain"),
            "data:text/plain;charset=utf-8;base64,SGVsbG8gV29ybGQ=");
  EXPECT_EQ(getDataUri("leasure.", "text/plain"),
            "data:text/plain;charset=utf-8;base64,bGVhc3VyZS4=");
  EXPECT_EQ(getDataUri("!@#$%^&*()_+", "text/plain"),
            "data:text/plain;charset=utf-8;base64,IUAjJCVeJiooKV8r");
  EXPECT_EQ(getDataUri("the quick brown dog jumps over the lazy fox", "text/plain"),
            "data:text/plain;charset=utf-8;base64,"
            "dGhlIHF1aWNrIGJyb3duIGRvZyBqdW1wcyBvdmVyIHRoZSBsYXp5IGZveA==");
  EXPECT_EQ(
      getDataUri("The present is theirs\n      The future, for which I really worked, is mine.",
                 "text/plain"),
      "data:text/plain;charset=utf-8;base64,"
      "VGhlIHByZXNlbnQgaXMgdGhlaXJzCiAgICAgIFRoZSBmdXR1cmUsIGZvciB3aGljaCBJIHJlYWxseSB3b3"
      "JrZWQsIGlzIG1pbmUu");
  EXPECT_EQ(getDataUri("Nim", "text/plain"), "data:text/plain;charset=utf-8;base64,Tmlt");
}

TEST(GetDataUri, EncodingAndEmptyArguments) {
  EXPECT_EQ(getDataUri("ab", "text/html", "ascii"), "data:text/html;charset=ascii;base64,YWI=");
  EXPECT_EQ(getDataUri(std::string_view("\0\xff", 2), "application/octet-stream"),
            "data:application/octet-stream;charset=utf-8;base64,AP8=");
  EXPECT_THROW((void)getDataUri("x", ""), ValueError);
  EXPECT_THROW((void)getDataUri("x", "text/plain", ""), ValueError);
}

// --- decodeQuery --------------------------------------------------------------------------

TEST(DecodeQuery, NimCases) {
  EXPECT_EQ(decodeQuery("a=1&b=0"), (QueryPairs{{"a", "1"}, {"b", "0"}}));
  // Nim >= 1.5.1 (and the installed 1.6): an unencoded '=' belongs to the value.
  EXPECT_EQ(decodeQuery("a=1&b=2c=6"), (QueryPairs{{"a", "1"}, {"b", "2c=6"}}));
}

TEST(DecodeQuery, NimExamples) {
  EXPECT_EQ(decodeQuery("foo=1&bar=2=3"), (QueryPairs{{"foo", "1"}, {"bar", "2=3"}}));
  EXPECT_EQ(decodeQuery("foo=1;bar=2=3", ';'), (QueryPairs{{"foo", "1"}, {"bar", "2=3"}}));
  EXPECT_EQ(decodeQuery("&a&=b&=&&"),
            (QueryPairs{{"", ""}, {"a", ""}, {"", "b"}, {"", ""}, {"", ""}}));
}

TEST(DecodeQuery, Decoding) {
  EXPECT_EQ(decodeQuery("k%20y=v+w%26x&%3D=%"), (QueryPairs{{"k y", "v w&x"}, {"=", "%"}}));
  EXPECT_EQ(decodeQuery("a=%4"), (QueryPairs{{"a", "%4"}}));
}

TEST(DecodeQuery, EdgeCases) {
  EXPECT_TRUE(decodeQuery("").empty());
  EXPECT_EQ(decodeQuery("a"), (QueryPairs{{"a", ""}}));
  EXPECT_EQ(decodeQuery("a="), (QueryPairs{{"a", ""}}));
  EXPECT_EQ(decodeQuery("a=1&"), (QueryPairs{{"a", "1"}}));
  EXPECT_EQ(decodeQuery("="), (QueryPairs{{"", ""}}));
}

TEST(DecodeQuery, CustomSeparatorOnly) {
  EXPECT_EQ(decodeQuery("a=1&2;b=3", ';'), (QueryPairs{{"a", "1&2"}, {"b", "3"}}));
  EXPECT_EQ(decodeQuery("a;b=1", ';'), (QueryPairs{{"a", ""}, {"b", "1"}}));
}

TEST(DecodeQuery, RoundTripsEncodeQuery) {
  const QueryPairs pairs = {{"a b", "c&d=e"}, {"+", "%"}, {"k", ""}};
  EXPECT_EQ(decodeQuery(encodeQuery(pairs)), pairs);
  EXPECT_EQ(decodeQuery(encodeQuery(pairs, false, false, ';'), ';'), pairs);
}

}  // namespace
}  // namespace asynchttp
