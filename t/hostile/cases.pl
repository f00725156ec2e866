# The table of hostile requests t/hostile/*.t send (driver:
# t/hostile/Hostile.pm).  A sub taking the driver's context ($c: tokens,
# keys, the last 428's approval request) and returning the cases, in the
# order they are sent.  A case:
#
#   name     unique
#   cat      its category (the counts by category are printed)
#   method, path           default POST /v1/chat/completions
#   token    the caller token (default: a good one for tenant acme);
#            undef sends none
#   auth     the header it goes in: authorization (as Bearer, default),
#            foxgov-auth, x-api-key, api-key
#   headers  [[name, value], ...]: raw bytes, sent as they are
#   body     raw bytes; ctype (default application/json, undef: none);
#            cl (a Content-Length to declare instead of the length);
#            chunked => [pieces] (sent chunked instead)
#   raw      the whole request, bytes (instead of all the above)
#   expect   status; code (the JSON error's code, docs/directives.md
#            "Status codes and error codes"), or nginx => 1 (nginx's own
#            answer: no FoxGov headers, no JSON); message (a regex);
#            evidence: none | recorded | forwarded (docs/records.md);
#            decision (default DENY), gate => [gate, result], tenant
#            (default acme), records => sub (auth, decision, call)
#
# Any field but expect may be a CODE ref taking $c, evaluated when the
# case is sent.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use FoxGov::Test::Fixtures qw(:all);

my $SYS = $Hostile::SYS_ID;

sub chat {
    my (%o) = @_;
    my $extra = $o{extra} // '';
    return '{"model":"' . ($o{model} // 'gpt-4o') . '","messages":'
         . '[{"role":"user","content":"' . ($o{content} // 'hi') . '"}]'
         . $extra . '}';
}

# A refusal after the AuthContext: recorded, DENY, the gate that failed.
sub rec {
    my ($status, $code, %o) = @_;
    return { status => $status, code => $code, evidence => 'recorded',
             %o };
}

# A refusal before any AuthContext: no record at all.
sub none {
    my ($status, $code, %o) = @_;
    return { status => $status, code => $code, evidence => 'none', %o };
}

sub fwd {
    my (%o) = @_;
    return { status => 200, evidence => 'forwarded', decision => 'ALLOW',
             gate => [ policy => 'pass' ], %o };
}

sub ngx {
    my ($status) = @_;
    return { status => $status, nginx => 1, evidence => 'none' };
}

my $BAD_JSON = rec(400, 'invalid_request', gate => [ schema => 'fail' ]);
my $BAD_TOKEN = none(401, 'invalid_token');

return sub {
    my ($c) = @_;
    my @t;

    # --------------------------------------------------- broken JSON

    my @broken = (
        [ 'empty body object', '{}' ],
        [ 'truncated object', '{"model":"gpt-4o"' ],
        [ 'truncated string', '{"model":"gpt-4o' ],
        [ 'truncated after colon', '{"model":' ],
        [ 'trailing comma', '{"model":"gpt-4o","messages":[],}' ],
        [ 'trailing comma in array', '{"model":"gpt-4o","messages":[1,]}' ],
        [ 'single quotes', "{'model':'gpt-4o'}" ],
        [ 'unquoted key', '{model:"gpt-4o"}' ],
        [ 'NaN', '{"model":"gpt-4o","temperature":NaN}' ],
        [ 'Infinity', '{"model":"gpt-4o","temperature":Infinity}' ],
        [ 'leading zero', '{"model":"gpt-4o","n":01}' ],
        [ 'leading plus', '{"model":"gpt-4o","n":+1}' ],
        [ 'bare dot number', '{"model":"gpt-4o","n":.5}' ],
        [ 'hex number', '{"model":"gpt-4o","n":0x10}' ],
        [ 'trailing garbage', chat() . 'x' ],
        [ 'two documents', chat() . chat() ],
        [ 'comment', '{"model":"gpt-4o" /* c */}' ],
        [ 'raw control character in a string',
          '{"model":"gpt-4o","user":"a' . "\x01" . 'b"}' ],
        [ 'raw newline in a string',
          '{"model":"gpt-4o","user":"a' . "\n" . 'b"}' ],
        [ 'raw NUL in a string',
          '{"model":"gpt-4o","user":"a' . "\x00" . 'b"}' ],
        [ 'NUL after the document', chat() . "\x00" ],
        [ 'bad escape', '{"model":"gpt-4o","user":"\x"}' ],
        [ 'bad unicode escape', '{"model":"gpt-4o","user":"\u12G4"}' ],
        [ 'short unicode escape', '{"model":"gpt-4o","user":"\u12"}' ],
        [ 'top-level array', '[' . chat() . ']' ],
        [ 'top-level string', '"gpt-4o"' ],
        [ 'top-level null', 'null' ],
        [ 'top-level number', '42' ],
        [ 'whitespace only', "  \r\n\t " ],
        [ 'BOM before the document', "\xEF\xBB\xBF" . chat() ],
        [ 'missing colon', '{"model" "gpt-4o"}' ],
        [ 'missing comma', '{"model":"gpt-4o" "messages":[]}' ],
        [ 'true misspelt', '{"model":"gpt-4o","stream":tru}' ],
        [ 'binary garbage', join('', map { chr(($_ * 37 + 11) % 256) }
                                     1 .. 300) ],
        [ 'unclosed array', '{"model":"gpt-4o","messages":[' ],
        [ 'deep nesting, 65 arrays',
          '{"model":"gpt-4o","x":' . ('[' x 65) . (']' x 65) . '}' ],
        [ 'deep nesting, 20000 arrays',
          '{"model":"gpt-4o","x":' . ('[' x 20000) . (']' x 20000) . '}' ],
        [ 'deep nesting, 5000 objects',
          '{"model":"gpt-4o","x":' . ('{"a":' x 5000) . '1'
          . ('}' x 5000) . '}' ],
        [ 'deep nesting, unclosed', '{"model":"gpt-4o","x":'
          . ('[' x 30000) ],
        [ 'number out of double range', '{"model":"gpt-4o","n":1e400}' ],
        [ 'negative number out of range',
          '{"model":"gpt-4o","n":-1e99999}' ],
        [ '30000-digit integer', '{"model":"gpt-4o","n":1'
          . ('0' x 30000) . '}' ],
        [ 'invalid UTF-8: bad continuation',
          '{"model":"gpt-4o","user":"' . "\xC3\x28" . '"}' ],
        [ 'invalid UTF-8: overlong slash',
          '{"model":"gpt-4o","user":"' . "\xC0\xAF" . '"}' ],
        [ 'invalid UTF-8: overlong NUL',
          '{"model":"gpt-4o","user":"' . "\xC0\x80" . '"}' ],
        [ 'invalid UTF-8: surrogate encoded',
          '{"model":"gpt-4o","user":"' . "\xED\xA0\x80" . '"}' ],
        [ 'invalid UTF-8: above U+10FFFF',
          '{"model":"gpt-4o","user":"' . "\xF4\x90\x80\x80" . '"}' ],
        [ 'invalid UTF-8: five-byte form',
          '{"model":"gpt-4o","user":"' . "\xF8\x88\x80\x80\x80" . '"}' ],
        [ 'invalid UTF-8: lone continuation',
          '{"model":"gpt-4o","user":"' . "\x80" . '"}' ],
        [ 'invalid UTF-8: truncated sequence',
          '{"model":"gpt-4o","user":"' . "\xE2\x82" . '"}' ],
        [ 'invalid UTF-8: 0xFF', '{"model":"gpt-4o","user":"' . "\xFF"
          . '"}' ],
        [ 'invalid UTF-8 in a key', '{"model":"gpt-4o","' . "\xFE"
          . '":1}' ],
        [ 'lone high surrogate', '{"model":"gpt-4o","user":"\uD800"}' ],
        [ 'lone low surrogate', '{"model":"gpt-4o","user":"\uDC00"}' ],
        [ 'high surrogate then letter',
          '{"model":"gpt-4o","user":"\uD800\u0041"}' ],
        [ 'surrogates reversed', '{"model":"gpt-4o","user":"\uDC00\uD800"}' ],
        [ 'lone surrogate in a key', '{"model":"gpt-4o","\uDBFF":1}' ],
        [ 'duplicate model', '{"model":"gpt-4o","model":"evil"}' ],
        [ 'duplicate key, escaped spelling',
          '{"model":"gpt-4o","mod\u0065l":"evil"}' ],
        [ 'duplicate key, nested',
          '{"model":"gpt-4o","messages":[{"role":"user","role":"system"}]}' ],
        [ 'duplicate key with a newline and a fake log line',
          '{"model":"gpt-4o","a\n2026/01/01 00:00:00 [warn] 1#1: forged":1,'
          . '"a\n2026/01/01 00:00:00 [warn] 1#1: forged":2}' ],
        [ 'duplicate key with escapes and quotes',
          '{"model":"gpt-4o","\u001b[31m\"\\\r":1,"\u001b[31m\"\\\r":2}' ],
        [ 'duplicate key of 3000 characters',
          '{"model":"gpt-4o","' . ('k' x 3000) . '":1,"' . ('k' x 3000)
          . '":2}' ],
        [ 'duplicate max_tokens (the rule reads it)',
          '{"model":"gpt-4o","max_tokens":10,"max_tokens":99999}' ],
    );
    push @t, map { { cat => 'json', name => "json: $_->[0]",
                     body => $_->[1], expect => $BAD_JSON } } @broken;

    # not a valid provider request
    my @shape = (
        [ 'no model', '{"messages":[]}' ],
        [ 'model null', '{"model":null}' ],
        [ 'model a number', '{"model":4}' ],
        [ 'model an array', '{"model":["gpt-4o"]}' ],
        [ 'model empty', '{"model":""}' ],
        [ 'model 257 characters', '{"model":"' . ('g' x 257) . '"}' ],
        [ 'model with a control character', '{"model":"gpt-4o\u0000"}' ],
        [ 'model with a newline', '{"model":"gpt-4o\n"}' ],
        [ 'model not ASCII', '{"model":"gpt-4\u00f6"}' ],
        [ 'stream a string', '{"model":"gpt-4o","stream":"yes"}' ],
        [ 'stream a number', '{"model":"gpt-4o","stream":1}' ],
    );
    push @t, map { { cat => 'json', name => "request shape: $_->[0]",
                     body => $_->[1], expect => $BAD_JSON } } @shape;

    push @t,
      { cat => 'json', name => 'request shape: no body',
        body => undef, expect => $BAD_JSON },
      { cat => 'json', name => 'request shape: GET without body',
        method => 'GET', expect => $BAD_JSON },
      { cat => 'json', name => 'request shape: text/plain is still JSON',
        ctype => 'text/plain', body => 'model=gpt-4o',
        expect => $BAD_JSON },
      # what is valid is served: the table does not refuse everything
      { cat => 'json', name => 'control: nesting at the 64 bound',
        body => '{"model":"gpt-4o","messages":[],"x":' . ('[' x 62)
              . (']' x 62) . '}',
        expect => fwd() },
      { cat => 'json', name => 'control: a valid surrogate pair',
        body => chat(content => '\uD83D\uDE00'), expect => fwd() },
      { cat => 'json', name => 'control: -0 and 1e-400',
        body => chat(extra => ',"n":-0,"temperature":1e-400'),
        expect => fwd() },
      # huge numbers the rules read: compared as doubles, still denied
      { cat => 'json', name => 'huge max_tokens 1e308',
        body => chat(extra => ',"max_tokens":1e308'),
        expect => rec(403, 'policy_denied',
                      message => qr/deny-big-completions/) },
      # valid JSON, but the decision input (jansson) holds integers of 64
      # bits: refused rather than decided on another value
      { cat => 'json', name => 'huge max_tokens, 40 digits',
        body => chat(extra => ',"max_tokens":' . ('9' x 40)),
        expect => rec(400, 'invalid_request',
                      message => qr/integer beyond 64 bits/) },
      # a real whose canonical form (RFC 8785) is an integer beyond 64
      # bits: read as a real, it would be written into the decision
      # record as 120000000000000000000, which no reader takes back
      { cat => 'json', name => 'max_tokens 1.2e20, canonically 21 digits',
        body => chat(extra => ',"max_tokens":120000000000000000e03'),
        expect => rec(400, 'invalid_request',
                      message => qr/integer beyond 64 bits/) },
      { cat => 'json', name => 'control: 4000 keys',
        body => chat(extra => join('', map { ",\"k$_\":$_" } 1 .. 4000)),
        expect => fwd() },
      { cat => 'json', name => 'control: keys alike but for normalisation',
        body => chat(extra => ",\"caf\xC3\xA9\":1,\"cafe\xCC\x81\":2"),
        expect => fwd() },
      { cat => 'json', name => 'control: a NUL in a key nothing reads',
        body => chat(extra => ',"a\u0000b":1'), expect => fwd() },
      { cat => 'json', name => 'a NUL inside the model',
        body => '{"model":"gpt-4o\u0000x","messages":[]}',
        expect => $BAD_JSON },
      { cat => 'json', name => 'control: a 40-digit integer nothing reads',
        body => chat(extra => ',"seed":' . ('9' x 40)), expect => fwd() },
      { cat => 'json', name => 'max_tokens 4096.0000000000001',
        body => chat(extra => ',"max_tokens":4096.000000000001'),
        expect => rec(403, 'policy_denied') },
      { cat => 'json', name => 'max_tokens as a string is not a number',
        body => chat(extra => ',"max_tokens":"99999"'),
        expect => fwd() };

    # ----------------------------------------------------- tool inputs

    my $snow = "/api/now/table/incident/$SYS";
    push @t,
      { cat => 'tool', name => 'tool: schema, unknown field',
        method => 'PATCH', path => $snow, body => '{"colour":"red"}',
        expect => rec(400, 'schema_violation',
                      message => qr{/colour: property not allowed}) },
      { cat => 'tool', name => 'tool: schema, not in the enum',
        method => 'PATCH', path => $snow, body => '{"priority":"9"}',
        expect => rec(400, 'schema_violation') },
      { cat => 'tool', name => 'tool: schema, a key with a fake log line',
        method => 'PATCH', path => $snow,
        body => '{"x\n2026/01/01 00:00:00 [warn] 1#1: forged\u001b[31m":1}',
        expect => rec(400, 'schema_violation') },
      { cat => 'tool', name => 'tool: schema, wrong type',
        method => 'PATCH', path => $snow, body => '{"priority":2}',
        expect => rec(400, 'schema_violation') },
      { cat => 'tool', name => 'tool: schema, too long',
        method => 'PATCH', path => $snow,
        body => '{"category":"' . ('c' x 41) . '"}',
        expect => rec(400, 'schema_violation') },
      { cat => 'tool', name => 'tool: schema, top-level array',
        method => 'PATCH', path => $snow, body => '[]',
        expect => rec(400, 'schema_violation') },
      { cat => 'tool', name => 'tool: schema, no body',
        method => 'PATCH', path => $snow, body => undef,
        expect => rec(400, 'schema_violation',
                      message => qr/needs a JSON body/) },
      { cat => 'tool', name => 'tool: schema, broken JSON',
        method => 'PATCH', path => $snow, body => '{"category":',
        expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: schema, not JSON whatever the type',
        method => 'PATCH', path => $snow, ctype => 'text/plain',
        body => 'category=x', expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: schema, duplicate key',
        method => 'PATCH', path => $snow,
        body => '{"priority":"1","priority":"5"}',
        expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: JSON tool, broken JSON',
        path => '/api/chat.postMessage', body => '{"text":',
        expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: JSON tool, lone surrogate',
        path => '/api/chat.postMessage', body => '{"text":"\uDFFF"}',
        expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: media type in capitals is JSON',
        path => '/api/chat.postMessage', ctype => 'Application/JSON',
        body => '{"text":', expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: +json media type with parameters',
        path => '/api/chat.postMessage',
        ctype => 'application/vnd.api+json; charset=utf-8',
        body => '{"text":', expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: JSON declared, UTF-16 sent',
        path => '/api/chat.postMessage', ctype => 'application/json',
        body => "\xFF\xFE{\x00}\x00", expect => rec(400, 'invalid_request') },
      { cat => 'tool', name => 'tool: schema, a NUL in a key',
        method => 'PATCH', path => $snow,
        body => '{"category":"x","a\u0000b":1}',
        expect => { status => 400, evidence => 'recorded' } },
      # a tool call's JSON body is read whole (jansson: keys are C
      # strings, integers 64 bits), so these are refused anywhere in it
      { cat => 'tool', name => 'tool: JSON tool, a NUL in a key',
        path => '/api/chat.postMessage', body => '{"text":"x","a\u0000b":1}',
        expect => rec(400, 'invalid_request', message => qr/NUL byte/) },
      { cat => 'tool', name => 'tool: JSON tool, a 40-digit integer',
        path => '/api/chat.postMessage',
        body => '{"text":"x","n":' . ('9' x 40) . '}',
        expect => rec(400, 'invalid_request',
                      message => qr/integer beyond 64 bits/) },
      # the request BlobRef's content_type is at most 127 characters
      { cat => 'tool', name => 'control: a Content-Type of 600 characters',
        path => '/api/chat.postMessage', ctype => 'text/plain; x='
        . ('a' x 586), body => 'hi', expect => fwd(records => sub {
            die "content_type of " . length($_[2]{request}{content_type})
                . "\n" if length($_[2]{request}{content_type}) > 127 }) },
      { cat => 'tool', name => 'control: a Content-Type with UTF-8 and a tab',
        path => '/api/chat.postMessage',
        ctype => "text/plain;\tcharset=\xC3\xA9", body => 'hi',
        expect => fwd() },
      { cat => 'tool', name => 'control: a Content-Type with invalid UTF-8',
        path => '/api/chat.postMessage', ctype => "text/\xFF\xFE",
        body => 'hi', expect => fwd() },
      { cat => 'tool', name => 'control: tool, not-JSON body as bytes',
        path => '/api/chat.postMessage', ctype => 'text/plain',
        body => "{\xFF\xFE not json", expect => fwd() };

    # ------------------------------------------------- body size

    my $pad = 65536 - length(chat(content => ''));
    push @t,
      { cat => 'size', name => 'body of exactly foxgov_body_max',
        body => chat(content => 'x' x $pad), expect => fwd() },
      { cat => 'size', name => 'body one byte over foxgov_body_max',
        body => chat(content => 'x' x ($pad + 1)),
        expect => rec(413, 'body_too_large') },
      { cat => 'size', name => 'Content-Length over the bound, no body',
        cl => 70000, expect => rec(413, 'body_too_large') },
      { cat => 'size', name => 'Content-Length 2^62, no body',
        cl => '4611686018427387904', expect => rec(413, 'body_too_large') },
      { cat => 'size', name => 'Content-Length over 2^63',
        cl => '99999999999999999999', expect => ngx(400) },
      { cat => 'size', name => 'Content-Length negative',
        cl => '-1', expect => ngx(400) },
      { cat => 'size', name => 'chunked, one chunk over the bound',
        body => 'x', chunked => [ 'x' x 70000 ],
        expect => { status => 413, evidence => 'recorded',
                    gate => [ schema => 'fail' ] } },
      { cat => 'size', name => 'chunked, bad chunk size',
        raw => sub { "POST /v1/chat/completions HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\n"
            . 'Authorization: Bearer ' . $_[0]->good . "\r\n"
            . "Content-Type: application/json\r\n"
            . "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" },
        expect => { status => 400, evidence => 'none' } },
      { cat => 'size', name => 'Content-Length and Transfer-Encoding',
        raw => sub { "POST /v1/chat/completions HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\n"
            . 'Authorization: Bearer ' . $_[0]->good . "\r\n"
            . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            . "0\r\n\r\n" },
        expect => ngx(400) },
      { cat => 'size', name => 'Transfer-Encoding gzip',
        raw => sub { "POST /v1/chat/completions HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\n"
            . 'Authorization: Bearer ' . $_[0]->good . "\r\n"
            . "Transfer-Encoding: gzip\r\n\r\n" },
        expect => ngx(501) },
      { cat => 'size', name => 'no token and a huge body',
        token => undef, cl => 70000,
        expect => none(401, 'missing_token') };

    # a request smuggled in a body the gateway refuses without reading:
    # the body is discarded, never parsed as the next request
    my $smuggled = sub { "POST /v1/chat/completions HTTP/1.1\r\n"
        . "Host: localhost\r\nAuthorization: Bearer " . $_[0]->good
        . "\r\nContent-Type: application/json\r\nContent-Length: "
        . length(chat()) . "\r\n\r\n" . chat() };
    push @t,
      { cat => 'smuggling', name => 'smuggling: in the body of a 401',
        keepalive => 1, token => undef, body => $smuggled,
        expect => none(401, 'missing_token') },
      { cat => 'smuggling', name => 'smuggling: in the body of a 413',
        keepalive => 1, body => sub { my $b = $smuggled->($_[0]);
            $b . (' ' x (70000 - length $b)) },
        expect => rec(413, 'body_too_large') },
      { cat => 'smuggling', name => 'smuggling: chunked, in a 401',
        keepalive => 1, token => 'x.y.z', body => 'x',
        chunked => sub { [ $smuggled->($_[0]) ] },
        expect => none(401, 'invalid_token') },
      { cat => 'smuggling', name => 'smuggling: in the body of a 400 '
        . 'unknown_endpoint', keepalive => 1, path => '/v1/files',
        body => $smuggled, expect => none(400, 'unknown_endpoint') },
      { cat => 'smuggling', name => 'smuggling: in the body of a 403',
        keepalive => 1, path => '/iso/v1/chat/completions',
        token => sub { $_[0]->tok(tenant => 'beta') },
        body => sub { '{"model":"gpt-4o","messages":[],"x":"'
            . ($smuggled->($_[0]) =~ s/(["\\])/\\$1/gr =~ s/\r/\\r/gr
                                    =~ s/\n/\\n/gr) . '"}' },
        expect => rec(403, 'credential_unavailable', decision => 'ALLOW',
                      tenant => 'beta') };

    # pipelined on one connection: each request is a call of its own
    my $ka = sub { my %o = @_; { keepalive => 1, body => chat(), %o } };
    push @t,
      { cat => 'pipeline', name => 'pipeline: a 401, then a good call',
        %{ $ka->(token => 'x.y.z') },
        expect => none(401, 'invalid_token'),
        then => { %{ $ka->() }, expect => fwd() } },
      { cat => 'pipeline', name => 'pipeline: a good call, then no token',
        %{ $ka->() }, expect => fwd(),
        then => { %{ $ka->(token => undef) },
                  expect => none(401, 'missing_token') } },
      { cat => 'pipeline', name => 'pipeline: a good call, then a forged '
        . 'token', %{ $ka->() }, expect => fwd(),
        then => { %{ $ka->(token => sub { $_[0]->forge('expired') }) },
                  expect => none(401, 'invalid_token') } },
      { cat => 'pipeline', name => 'pipeline: acme, then beta on acme\'s '
        . 'credential', %{ $ka->(path => '/iso/v1/chat/completions') },
        expect => fwd(),
        then => { %{ $ka->(path => '/iso/v1/chat/completions',
                           token => sub { $_[0]->tok(tenant => 'beta') }) },
                  expect => rec(403, 'credential_unavailable',
                      decision => 'ALLOW', tenant => 'beta') } },
      { cat => 'pipeline', name => 'pipeline: a 413 with its body, then a '
        . 'good call', %{ $ka->(body => chat(content => 'x' x 70000)) },
        expect => rec(413, 'body_too_large'),
        then => { %{ $ka->() }, expect => fwd() } },
      { cat => 'pipeline', name => 'pipeline: a held write, then the same '
        . 'with a forged approval', keepalive => 1, method => 'PATCH',
        path => "/api/now/table/incident/$SYS",
        body => '{"category":"pipelined"}',
        expect => rec(428, 'approval_required', decision => 'REQUIRE_HITL'),
        then => { keepalive => 1, method => 'PATCH',
                  path => "/api/now/table/incident/$SYS",
                  body => '{"category":"pipelined"}',
                  headers => [ [ 'FoxGov-Approval' => 'x.y.z' ] ],
                  expect => rec(401, 'invalid_approval',
                                decision => 'REQUIRE_HITL') } };

    # bodies that arrive in pieces: hashed and read whole
    my $canon = '{"messages":[{"content":"h\u00e9 \u20ac","role":"user"}],'
              . '"model":"gpt-4o"}';
    push @t,
      { cat => 'slow', name => 'slow: a body in 1-byte chunks',
        body => 'x', chunked => [ split //, '{"model":"gpt-4o","messages":'
            . "[{\"role\":\"user\",\"content\":\"h\xC3\xA9 \xE2\x82\xAC\"}]}" ],
        expect => fwd(records => sub {
            die "request $_[2]{request}{sha256}\n"
                unless $_[2]{request}{sha256} eq sha256_hex(
                    "{\"messages\":[{\"content\":\"h\xC3\xA9 \xE2\x82\xAC\","
                    . "\"role\":\"user\"}],\"model\":\"gpt-4o\"}") }) },
      { cat => 'slow', name => 'slow: headers and body in 6 writes',
        slow => 6, body => chat(content => 'y' x 3000), expect => fwd() },
      { cat => 'slow', name => 'slow: a 60000-byte body in 8 writes',
        slow => 8, body => chat(content => 'z' x 60000), expect => fwd() },
      { cat => 'slow', name => 'slow: chunked over the bound in 5 writes',
        slow => 5, body => 'x', chunked => [ map { 'w' x 20000 } 1 .. 4 ],
        expect => { status => 413, evidence => 'recorded' } },
      { cat => 'slow', name => 'slow: broken JSON in 4 writes',
        slow => 4, body => '{"model":"gpt-4o","messages":[' . ('1,' x 500),
        expect => $BAD_JSON };

    # ---------------------------------------------------- tokens

    my @kinds = grep { $_ ne 'bad_tenant' } @FORGE_KINDS;
    for my $src (qw(authorization foxgov-auth x-api-key)) {
        for my $kind (@kinds) {
            push @t, { cat => 'token', name => "token: $kind in $src",
                auth => $src,
                token => sub { $_[0]->forge($kind,
                    ($kind eq 'alg_confusion'
                     ? (key => $_[0]->keys_of('rs')) : ())) },
                expect => $BAD_TOKEN };
        }
    }
    push @t,
      { cat => 'token', name => 'token: alg_none in api-key', auth =>
        'api-key', token => sub { $_[0]->forge('alg_none') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: alg_confusion, RSA JWK as secret',
        token => sub { $_[0]->forge('alg_confusion',
            key => $_[0]->keys_of('rs'), secret_from => 'jwk') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: alg_confusion, RSA modulus as secret',
        token => sub { $_[0]->forge('alg_confusion',
            key => $_[0]->keys_of('rs'), secret_from => 'raw') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: alg_confusion, EC key PEM',
        token => sub { $_[0]->forge('alg_confusion',
            key => $_[0]->keys_of('es')) },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: alg_confusion, Ed25519 key',
        token => sub { $_[0]->forge('alg_confusion',
            key => $_[0]->g->{auth_pem}, secret_from => 'raw') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: bad signature, RS256',
        token => sub { $_[0]->forge('bad_signature',
            key => $_[0]->keys_of('rs')) }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: bad signature, ES256',
        token => sub { $_[0]->forge('bad_signature',
            key => $_[0]->keys_of('es')) }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: HS256 with a wrong secret',
        token => sub { $_[0]->signed(secret => 'not-the-secret-' x 3,
            alg => 'HS256', kid => 'hs') }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: HS256 secret under the Ed25519 kid',
        token => sub { $_[0]->signed(secret => $_[0]->keys_of('hs'),
            alg => 'HS256', kid => 'caller') }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: RS256 signature named EdDSA',
        token => sub { $_[0]->signed(key => $_[0]->keys_of('rs'),
            kid => 'rs', alg => 'EdDSA', sign_alg => 'RS256') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: ES256 key named as RS256',
        token => sub { $_[0]->signed(key => $_[0]->keys_of('es'),
            kid => 'es', alg => 'RS256', sign_alg => 'ES256') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: signed by a stranger as "caller"',
        token => sub {
            my ($pem) = keygen($_[0]->g->dir . '/keys/stranger',
                               'caller', 'EdDSA');
            $_[0]->signed(key => $pem) }, expect => $BAD_TOKEN };
    for my $alg ('NONE', 'None', 'HS512', 'RS512', 'ES384', 'PS256',
                 'EdDSA ', 'ED25519', '') {
        push @t, { cat => 'token', name => "token: alg \"$alg\"",
            token => sub { $_[0]->signed(header => { alg => $alg }) },
            expect => $BAD_TOKEN };
    }
    push @t,
      { cat => 'token', name => 'token: kid path traversal',
        token => sub { $_[0]->signed(kid => '../../../../etc/passwd') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: kid of 8000 characters',
        token => sub { $_[0]->signed(kid => 'k' x 8000) },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: kid a number',
        token => sub { $_[0]->signed(header => { kid => 7 }) },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: header not JSON',
        token => sub { $_[0]->signed(header => '{"alg":"EdDSA",') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: header an array',
        token => sub { $_[0]->signed(header => '["EdDSA"]') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: header with duplicate alg',
        token => sub { $_[0]->signed(header =>
            '{"alg":"EdDSA","kid":"caller","alg":"none"}') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: payload not JSON, signed',
        token => sub { $_[0]->signed(payload => '{"tenant_id":') },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: payload with duplicate tenant_id',
        token => sub {
            my $p = JSON::PP->new->canonical->encode(
                token_claims(tenant => 'acme'));
            $p =~ s/^\{/{"tenant_id":"beta",/;
            $_[0]->signed(payload => $p) }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: payload with a lone surrogate',
        token => sub {
            my $p = JSON::PP->new->canonical->encode(
                token_claims(tenant => 'acme', sub => 'SUBX'));
            $p =~ s/SUBX/\\uD800/;
            $_[0]->signed(payload => $p) }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: payload with invalid UTF-8',
        token => sub {
            my $p = JSON::PP->new->canonical->encode(
                token_claims(tenant => 'acme', sub => 'SUBX'));
            $p =~ s/SUBX/\xC0\xAF/;
            $_[0]->signed(payload => $p) }, expect => $BAD_TOKEN };
    my @claims = (
        [ 'exp a string', extra => { exp => '9999999999' } ],
        [ 'exp a float', extra => { exp => time() + 3600.5 } ],
        [ 'exp 1e300', extra => { exp => 1e300 } ],
        [ 'exp negative', extra => { exp => -1 } ],
        [ 'exp now', extra => { exp => int time() } ],
        [ 'nbf a string', extra => { nbf => '0' } ],
        [ 'iat an object', extra => { iat => {} } ],
        [ 'no sub', extra => { sub => undef } ],
        [ 'no iss', extra => { iss => undef } ],
        [ 'no capabilities', extra => { capabilities => undef } ],
        [ 'capabilities a string', extra => { capabilities => 'model:*' } ],
        [ 'capability not a string', caps => [ 'model:*', 7 ] ],
        [ '257 capabilities', caps => [ map { "model:m$_" } 1 .. 257 ] ],
        [ 'capability admin', caps => [ 'admin:*' ] ],
        [ 'workspace an array', extra => { workspace_id => [ 'ws1' ] } ],
        [ 'sub of 5000 characters', sub => 's' x 5000 ],
    );
    for my $cl (@claims) {
        my ($n, @o) = @$cl;
        push @t, { cat => 'token', name => "token: claim $n",
            token => sub { $_[0]->signed(claim_opts => { tenant => 'acme',
                @o }) }, expect => $BAD_TOKEN };
    }
    push @t,
      { cat => 'token', name => 'token: four parts',
        token => sub { $_[0]->good . '.x' }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: five parts (JWE shape)',
        token => sub { my $g = $_[0]->good; "$g.a.b" },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: empty parts', token => '..',
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: whitespace inside',
        token => sub { my $g = $_[0]->good; substr($g, 20, 0) = ' '; $g },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: not ASCII',
        token => sub { my $g = $_[0]->good; substr($g, 20, 1) = "\xC3\xA9";
                       $g }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: standard base64 characters',
        token => sub { my $g = $_[0]->good; substr($g, 5, 1) = '+'; $g },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: signature spliced from another',
        token => sub {
            my ($h, $p) = split /\./, $_[0]->tok(tenant => 'beta');
            my (undef, undef, $s) = split /\./, $_[0]->good;
            "$h.$p.$s" }, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: 16 KiB + 1 of A',
        token => 'A' x 16385, expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: random', token => 'sk-' . 'q' x 48,
        expect => $BAD_TOKEN },
      # nginx strips the trailing spaces: "Bearer" alone
      { cat => 'token', name => 'token: Bearer with spaces only',
        token => '   ', expect => none(401, 'missing_token') },
      { cat => 'token', name => 'token: Bearer, spaces, then a tab',
        token => "   \t.", expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: FoxGov-Auth present but empty',
        auth => 'foxgov-auth', token => '',
        headers => sub { [ [ Authorization => 'Bearer ' . $_[0]->good ] ] },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: none at all', token => undef,
        expect => none(401, 'missing_token') },
      { cat => 'token', name => 'token: Authorization Basic',
        token => undef, headers => [ [ Authorization =>
            'Basic YWxhZGRpbjpvcGVuc2VzYW1l' ] ],
        expect => none(401, 'missing_token') },
      { cat => 'token', name => 'token: Authorization "Bearer" alone',
        token => undef, headers => [ [ Authorization => 'Bearer' ] ],
        expect => none(401, 'missing_token') },
      { cat => 'token', name => 'token: forged FoxGov-Auth beats a good '
        . 'Authorization', auth => 'foxgov-auth',
        token => sub { $_[0]->forge('bad_signature') },
        headers => sub { [ [ Authorization => 'Bearer ' . $_[0]->good ] ] },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: two FoxGov-Auth, the first forged',
        auth => 'foxgov-auth', token => sub { $_[0]->forge('expired') },
        headers => sub { [ [ 'FoxGov-Auth' => $_[0]->good ] ] },
        expect => $BAD_TOKEN },
      { cat => 'token', name => 'token: a token in the query only',
        token => undef, path => sub { '/v1/chat/completions?api-key='
            . $_[0]->url_tok }, body => chat(),
        expect => none(401, 'missing_token') };

    # ---------------------------------------------- hostile tenants

    my @tenants = (
        [ '../x', '../x' ], [ '..', '..' ], [ 'traversal',
          '../../../../tmp/acme-evil' ], [ 'acme/../beta', 'acme/../beta' ],
        [ 'slash', 'a/b' ], [ 'backslash', 'acme\\x' ],
        [ 'e acute', "acm\x{e9}" ], [ 'cyrillic a', "\x{430}cme" ],
        [ 'fullwidth', "\x{ff41}\x{ff43}\x{ff4d}\x{ff45}" ],
        [ 'right-to-left override', "acme\x{202e}" ],
        [ '64 characters', 'a' x 64 ], [ '1000 characters', 'a' x 1000 ],
        [ 'uppercase', 'ACME' ], [ 'capitalised', 'Acme' ], [ 'empty', '' ],
        [ 'leading dash', '-acme' ], [ 'leading underscore', '_acme' ],
        [ 'hash tag close', 'acme}' ], [ 'hash tag', '{acme}' ],
        [ 'space', 'acme x' ], [ 'newline', "acme\n" ], [ 'NUL', "acme\0" ],
        [ 'glob', 'acme*' ], [ 'dot', 'acme.eu' ], [ 'colon',
          'acme:ev' ], [ 'a number', 42 ], [ 'an array', [ 'acme' ] ],
        [ 'null', undef ],
    );
    for my $tt (@tenants) {
        my ($n, $v) = @$tt;
        push @t, { cat => 'tenant', name => "tenant: $n",
            token => sub { $_[0]->tenant_tok($v) }, body => chat(),
            expect => $BAD_TOKEN };
    }
    push @t,
      { cat => 'tenant', name => 'tenant: forge kind bad_tenant',
        token => sub { $_[0]->forge('bad_tenant') }, expect => $BAD_TOKEN },
      { cat => 'tenant', name => 'control: tenant of 63 characters',
        token => sub { $_[0]->tok(tenant => 'a' x 63) }, body => chat(),
        expect => fwd(tenant => 'a' x 63) };

    # step-up: an acr that is not the one asked for, in any shape, is no
    # step-up (401, either refused with the token or asked again)
    my $gh = sub { my ($acr) = @_; {
        path => '/github/', body => '{"a":1}',
        token => sub { $_[0]->signed(claim_opts => { acr => $acr }) } } };
    push @t,
      { cat => 'step-up', name => 'step-up: no acr',
        path => '/github/repos/acme/x', body => '{"a":1}',
        expect => rec(401, 'step_up_required', decision => 'REQUIRE_STEP_UP',
            www => qr/^Bearer error="insufficient_user_authentication"/) },
      { cat => 'step-up', name => 'step-up: acr in capitals',
        %{ $gh->('URN:FOXGOV:ACR:MFA') },
        expect => rec(401, 'step_up_required', decision => 'REQUIRE_STEP_UP',
            www => qr/acr_values="urn:foxgov:acr:mfa"/) },
      { cat => 'step-up', name => 'step-up: acr with a NUL after it',
        %{ $gh->("urn:foxgov:acr:mfa\0") }, expect => $BAD_TOKEN },
      { cat => 'step-up', name => 'step-up: acr an array holding the one '
        . 'asked for', %{ $gh->([ 'urn:foxgov:acr:mfa' ]) },
        expect => $BAD_TOKEN },
      { cat => 'step-up', name => 'step-up: acr an object',
        %{ $gh->({ v => 'urn:foxgov:acr:mfa' }) }, expect => $BAD_TOKEN },
      { cat => 'step-up', name => 'step-up: acr a number', %{ $gh->(2) },
        expect => $BAD_TOKEN },
      { cat => 'step-up', name => 'control: step-up, the acr asked for',
        %{ $gh->('urn:foxgov:acr:mfa') }, expect => fwd() };

    # ---------------------------------------- cross-tenant credentials

    my $beta = sub { $_[0]->tok(tenant => 'beta') };
    my $xt = rec(403, 'credential_unavailable', decision => 'ALLOW',
                 tenant => 'beta', gate => [ policy => 'pass' ]);
    push @t,
      { cat => 'cross-tenant', name => 'cross-tenant: beta on acme\'s '
        . 'credential', path => '/iso/v1/chat/completions', token => $beta,
        body => chat(), expect => $xt },
      { cat => 'cross-tenant', name => 'cross-tenant: beta claims acme in '
        . 'headers', path => '/iso/v1/chat/completions', token => $beta,
        headers => [ [ 'X-Tenant-Id' => 'acme' ],
                     [ 'FoxGov-Tenant' => 'acme' ] ],
        body => chat(), expect => $xt },
      { cat => 'cross-tenant', name => 'cross-tenant: beta claims acme in '
        . 'the query', path => '/iso/v1/chat/completions?tenant_id=acme',
        token => $beta, body => chat(), expect => $xt },
      { cat => 'cross-tenant', name => 'cross-tenant: beta\'s token first, '
        . 'acme\'s in x-api-key', path => '/iso/v1/chat/completions',
        token => $beta, headers => sub { [ [ 'x-api-key' => $_[0]->good ] ] },
        body => chat(), expect => $xt },
      { cat => 'cross-tenant', name => 'cross-tenant: beta with workspace '
        . 'and labels saying acme', path => '/iso/v1/chat/completions',
        token => sub { $_[0]->tok(tenant => 'beta', workspace => 'acme') },
        headers => [ [ 'FoxGov-Labels' => 'tenant=acme' ] ],
        body => chat(), expect => $xt },
      { cat => 'cross-tenant', name => 'control: acme on its own credential',
        path => '/iso/v1/chat/completions', body => chat(),
        expect => fwd() };

    # ---------------------------------------------------- headers

    my $lab = rec(400, 'invalid_labels', gate => [ schema => 'fail' ]);
    my @labels = (
        [ 'control character', "a=b\x01c" ], [ 'DEL', "a=b\x7f" ],
        [ 'not ASCII', "a=caf\xC3\xA9" ], [ 'uppercase key', 'Team=x' ],
        [ 'empty key', '=x' ], [ 'no equals', 'team' ],
        [ 'duplicate key', 'a=1, a=2' ], [ '17 members',
          join(',', map { "k$_=v" } 1 .. 17) ],
        [ 'key of 65 bytes', ('k' x 65) . '=v' ],
        [ 'value of 257 bytes', 'k=' . ('v' x 257) ],
        [ 'over 8192 bytes', join(',' . (' ' x 300),
                                  map { "k$_=" . ('v' x 250) } 1 .. 16) ],
    );
    # the message names the header once (core's message starts with it)
    push @t, map { { cat => 'header', name => "labels: $_->[0]",
                     headers => [ [ 'FoxGov-Labels' => $_->[1] ] ],
                     body => chat(), expect => { %$lab, message =>
                         qr/^schema gate: FoxGov-Labels(?!: FoxGov-Labels)/ }
                   } } @labels;
    my $idem = rec(400, 'invalid_idempotency_key',
                   gate => [ schema => 'fail' ]);
    for my $where ([ 'model', '/v1/chat/completions', chat() ],
                   [ 'tool', '/api/chat.postMessage', '{"text":"hi"}' ]) {
        my ($w, $p, $b) = @$where;
        push @t, map { { cat => 'header',
            name => "Idempotency-Key ($w): $_->[0]", path => $p, body => $b,
            headers => [ [ 'Idempotency-Key' => $_->[1] ] ],
            expect => $idem } }
            [ '257 bytes', 'i' x 257 ], [ 'a space inside', 'a b' ],
            [ 'not ASCII', "caf\xC3\xA9" ], [ 'empty', '' ];
    }
    # one field each, or the record would hold one of what was sent
    push @t,
      { cat => 'header', name => 'labels: sent twice',
        headers => [ [ 'FoxGov-Labels' => 'team=a' ],
                     [ 'FoxGov-Labels' => 'ticket=b' ] ], body => chat(),
        expect => { %$lab, message => qr/sent 2 times/ } },
      { cat => 'header', name => 'Idempotency-Key (tool): sent twice',
        path => '/api/chat.postMessage', body => '{"text":"hi"}',
        headers => [ [ 'Idempotency-Key' => 'key-1' ],
                     [ 'Idempotency-Key' => 'key-2' ] ],
        expect => { %$idem, message => qr/sent 2 times/ } },
      { cat => 'header', name => 'Idempotency-Key (model): sent three times',
        body => chat(), headers => [ map { [ 'Idempotency-Key' => "k$_" ] }
                                     1 .. 3 ],
        expect => { %$idem, message => qr/sent 3 times/ } },
      { cat => 'header', name => 'control: one Idempotency-Key is recorded',
        path => '/api/chat.postMessage', body => '{"text":"hi"}',
        headers => [ [ 'Idempotency-Key' => 'key-1' ] ],
        expect => fwd(records => sub {
            die "idempotency_key $_[2]{idempotency_key}\n"
                unless $_[2]{idempotency_key} eq 'key-1' }) };

    push @t,
      { cat => 'header', name => 'header: line over the header buffers',
        headers => [ [ 'X-Big' => 'b' x 40000 ] ], body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: token over the header buffers',
        token => 'A' x 40000, body => chat(), expect => ngx(400) },
      { cat => 'header', name => 'header: request line over the buffers',
        path => '/v1/chat/completions?' . ('q' x 40000), body => chat(),
        expect => ngx(414) },
      { cat => 'header', name => 'header: NUL in a value',
        headers => [ [ 'X-A' => "a\0b" ] ], body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: NUL in the token',
        token => sub { $_[0]->good . "\0" }, body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: bare CR in a value',
        headers => [ [ 'X-A' => "a\rFoxGov-Auth: x" ] ], body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: bare CR in the token',
        token => sub { $_[0]->good . "\rX-B: 1" }, body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: CRLF in labels ends the line',
        headers => [ [ 'FoxGov-Labels' => "a=1\r\nFoxGov-Labels: A=2" ] ],
        body => chat(), expect => $lab },
      { cat => 'header', name => 'header: two Authorization headers',
        headers => sub { [ [ Authorization => 'Bearer '
            . $_[0]->tok(tenant => 'beta') ] ] }, body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: a space in a name',
        headers => [ [ 'FoxGov Auth' => 'forged' ] ], body => chat(),
        expect => ngx(400) },
      { cat => 'header', name => 'header: underscore name is ignored',
        headers => [ [ 'FoxGov_Auth' => 'forged' ] ], body => chat(),
        expect => fwd() },
      { cat => 'header', name => 'header: lowercase method',
        method => 'post', body => chat(), expect => ngx(400) },
      { cat => 'header', name => 'header: TRACE',
        method => 'TRACE', expect => ngx(405) },
      { cat => 'header', name => 'header: many small headers',
        headers => [ map { [ "X-H$_" => 'v' ] } 1 .. 300 ],
        body => chat(), expect => fwd() };

    # Azure runs the deployment the path names: that is what is decided
    my $az = sub { "/openai/deployments/$_[0]/chat/completions"
                   . '?api-version=2024-10-21' };
    push @t,
      { cat => 'azure', name => 'azure: an allowed model in the body, an '
        . 'unapproved deployment in the path', path => $az->('o1-unapproved'),
        body => chat(), expect => rec(403, 'policy_denied',
            records => sub { die "model $_[2]{model}\n"
                                 unless $_[2]{model} eq 'o1-unapproved' }) },
      { cat => 'azure', name => 'azure: a token for gpt-4o only, another '
        . 'deployment', path => $az->('o1-unapproved'), body => chat(),
        token => sub { $_[0]->tok(caps => [ 'model:gpt-4o*' ]) },
        expect => rec(403, 'capability_denied',
                      gate => [ capability => 'fail' ]) },
      # refused by the schema gate, but a path with a control character
      # cannot go into a decision input: answered unrecorded
      { cat => 'azure', name => 'azure: deployment with a control character',
        path => $az->('a%01b'), body => chat(),
        expect => none(400, 'invalid_request') },
      { cat => 'azure', name => 'azure: deployment of 300 characters',
        path => $az->('d' x 300), body => chat(),
        expect => rec(400, 'invalid_request') },
      { cat => 'azure', name => 'control: azure, an allowed deployment',
        path => $az->('my-deployment'), body => chat(model => 'whatever'),
        expect => fwd() };

    # ------------------------------------------------------- paths

    my $bad_path = none(400, 'invalid_request',
                        message => qr/cannot be recorded/);
    push @t,
      { cat => 'path', name => 'path: unknown endpoint',
        path => '/v1/chat/completions/', body => chat(),
        expect => none(400, 'unknown_endpoint') },
      { cat => 'path', name => 'path: unknown endpoint, no token',
        path => '/v1/models', token => undef,
        expect => none(400, 'unknown_endpoint') },
      { cat => 'path', name => 'path: a newline and a fake log line',
        path => '/v1/x%0a2026/01/01%2000:00:00%20[warn]%201#1:%20forged',
        body => chat(), expect => none(400, 'unknown_endpoint') },
      { cat => 'path', name => 'path: a terminal escape',
        path => '/v1/%1b[31mred', body => chat(),
        expect => none(400, 'unknown_endpoint') },
      { cat => 'path', name => 'path: encoded NUL',
        path => '/v1/chat/completions%00', body => chat(),
        expect => ngx(400) },
      { cat => 'path', name => 'path: traversal out of the location',
        path => '/v1/%2e%2e/etc/passwd', body => chat(),
        expect => ngx(404) },
      { cat => 'path', name => 'path: traversal above the root',
        path => '/../../etc/passwd', body => chat(), expect => ngx(400) },
      { cat => 'path', name => 'path: control character in a tool path',
        path => '/api/chat.postMessage/%01', body => '{"text":"x"}',
        expect => $bad_path },
      { cat => 'path', name => 'path: CRLF in a tool path',
        path => '/api/chat.postMessage/%0d%0aX-Injected:%20yes',
        body => '{"text":"x"}', expect => $bad_path },
      { cat => 'path', name => 'path: invalid UTF-8 in a tool path',
        path => '/api/chat.postMessage/%ff%fe', body => '{"text":"x"}',
        expect => $bad_path },
      { cat => 'path', name => 'path: 5000 bytes',
        path => '/api/chat.postMessage/' . ('p' x 5000),
        body => '{"text":"x"}', expect => $bad_path },
      # what the records hold of a path, labels and keys must still be
      # records the ledger takes (checked after all cases)
      # (the mock knows no such Slack path: it answers 401 itself)
      { cat => 'path', name => 'control: UTF-8 in a tool path',
        path => '/api/chat.postMessage/caf%C3%A9', body => '{"text":"x"}',
        expect => { %{ fwd() }, status => 401 } },
      { cat => 'path', name => 'path: DEL in a tool path',
        path => '/api/chat.postMessage/%7f', body => '{"text":"x"}',
        expect => $bad_path },
      { cat => 'path', name => 'control: a C1 control (U+0085) in a tool '
        . 'path', path => '/api/chat.postMessage/%C2%85',
        body => '{"text":"x"}', expect => { %{ fwd() }, status => 401 } },
      { cat => 'path', name => 'control: a bidi override in a tool path',
        path => '/api/chat.postMessage/%E2%80%AEevil', body => '{"text":"x"}',
        expect => { %{ fwd() }, status => 401 } },
      { cat => 'path', name => 'control: a tool query of 6000 bytes with %00',
        path => '/api/chat.postMessage?q=' . ('%00' x 2000),
        body => '{"text":"x"}', expect => fwd() },
      { cat => 'header', name => 'control: labels with quotes, backslashes, '
        . 'braces', body => chat(), headers => [ [ 'FoxGov-Labels' =>
            'a="x\\y", b={}, c=' ] ],
        expect => fwd(records => sub {
            die "labels\n" unless $_[2]{labels}{a} eq '"x\\y"' }) },
      { cat => 'header', name => 'control: Idempotency-Key with quotes and '
        . 'a backslash', path => '/api/chat.postMessage',
        body => '{"text":"x"}', headers => [ [ 'Idempotency-Key' =>
            '"k\\1{}' ] ], expect => fwd() },
      # decided on $uri, normalised; the rewrite sends that one upstream
      { cat => 'path', name => 'control: a path normalised into the '
        . 'endpoint', path => '/anthropic/v1/x/%2e%2e/messages',
        body => '{"model":"claude-3-5-sonnet-20241022","max_tokens":5,'
              . '"messages":[{"role":"user","content":"hi"}]}',
        headers => [ [ 'anthropic-version' => '2023-06-01' ] ],
        expect => fwd(), check => sub {
            my $req = $_[1]->g->upstream->last_request;
            die "upstream got $req->{path}\n"
                unless $req->{path} eq '/v1/messages' } };

    # ------------------------------------------------- traceparent

    my $tid = '4bf92f3577b34da6a3ce929d0e0e4736';
    my $sid = '00f067aa0ba902b7';
    my @tp = (
        [ 'garbage', 'garbage' ],
        [ 'uppercase hex', '00-' . uc($tid) . "-$sid-01" ],
        [ 'all-zero trace id', '00-' . ('0' x 32) . "-$sid-01" ],
        [ 'all-zero span id', "00-$tid-" . ('0' x 16) . '-01' ],
        [ 'version ff', "ff-$tid-$sid-01" ],
        [ 'version 00 with more', "00-$tid-$sid-01-x" ],
        [ 'short trace id', '00-' . substr($tid, 1) . "-$sid-01" ],
        [ 'long trace id', "00-${tid}0-$sid-01" ],
        [ 'not hex', '00-' . ('g' x 32) . "-$sid-01" ],
        [ 'flags not hex', "00-$tid-$sid-zz" ],
        [ 'no flags', "00-$tid-$sid" ],
        [ 'underscores', "00_${tid}_${sid}_01" ],
        [ 'empty', '' ],
        [ 'not ASCII', "00-$tid-$sid-0\xC3\xA9" ],
        [ '8000 characters', "00-$tid-$sid-01" . ('f' x 7945) ],
        [ 'higher version, bad suffix', "01-$tid-$sid-01x" ],
    );
    for my $x (@tp) {
        push @t, { cat => 'trace', name => "traceparent required: $x->[0]",
            path => '/req/v1/chat/completions', body => chat(),
            headers => [ [ traceparent => $x->[1] ] ],
            expect => rec(400, 'invalid_traceparent',
                          gate => [ schema => 'fail' ]) };
    }
    push @t,
      { cat => 'trace', name => 'traceparent required: absent',
        path => '/req/v1/chat/completions', body => chat(),
        expect => rec(400, 'invalid_traceparent') },
      { cat => 'trace', name => 'control: traceparent, a higher version '
        . 'with 8000 characters more', path => '/req/v1/chat/completions',
        body => chat(), headers => [ [ traceparent =>
            "01-$tid-$sid-01-" . ('f' x 8000) ] ], expect => fwd() },
      { cat => 'trace', name => 'traceparent required: two of them',
        path => '/req/v1/chat/completions', body => chat(),
        headers => [ [ traceparent => "00-$tid-$sid-01" ],
                     [ traceparent => "00-$tid-$sid-01" ] ],
        expect => rec(400, 'invalid_traceparent') },
      { cat => 'trace', name => 'traceparent required: no token first',
        path => '/req/v1/chat/completions', body => chat(), token => undef,
        headers => [ [ traceparent => 'garbage' ] ],
        expect => none(401, 'missing_token') },
      { cat => 'trace', name => 'control: traceparent required, valid',
        path => '/req/v1/chat/completions', body => chat(),
        headers => [ [ traceparent => "00-$tid-$sid-01" ] ],
        expect => fwd(records => sub {
            die "trace not continued\n"
                unless $_[0]{trace}{trace_id} eq $tid
                    && $_[0]{trace}{parent_span_id} eq $sid }) };
    # at an ingress location the same are served under a new trace
    for my $x (@tp[0, 2, 4, 12, 14]) {
        push @t, { cat => 'trace', name => "traceparent ingress: $x->[0]",
            body => chat(), headers => [ [ traceparent => $x->[1] ],
                                         [ tracestate => 'a=b' ] ],
            expect => fwd(records => sub {
                die "not a new trace\n"
                    if $_[0]{trace}{trace_id} eq $tid
                    || defined $_[0]{trace}{parent_span_id} }) };
    }
    push @t,
      { cat => 'trace', name => 'tracestate: 40 members',
        body => chat(), headers => [ [ traceparent => "00-$tid-$sid-01" ],
            [ tracestate => join ',', map { "k$_=v" } 1 .. 40 ] ],
        expect => fwd() },
      { cat => 'trace', name => 'tracestate: 100 headers',
        body => chat(), headers => [ [ traceparent => "00-$tid-$sid-01" ],
            map { [ tracestate => "k$_=v" ] } 1 .. 100 ],
        expect => fwd() },
      { cat => 'trace', name => 'tracestate: 20000 bytes',
        body => chat(), headers => [ [ traceparent => "00-$tid-$sid-01" ],
            [ tracestate => 'k=' . ('v' x 20000) ] ],
        expect => fwd() };

    # ---------------------------------------------------- approvals

    my $snow_body = '{"category":"network","priority":"2",'
                  . '"work_notes":"hostile"}';
    my $held = rec(428, 'approval_required', decision => 'REQUIRE_HITL',
                   gate => [ policy => 'pass' ]);
    my $bad_appr = rec(401, 'invalid_approval', decision => 'REQUIRE_HITL');
    my $A;    # the approval of the call, once made
    my $ap = sub { my ($mk) = @_; sub { [ [ 'FoxGov-Approval' => $mk->(@_) ] ] } };
    push @t,
      { cat => 'approval', name => 'approval: the call is held',
        method => 'PATCH', path => $snow, body => $snow_body,
        check => sub { $_[1]{held} = $_[0]{json}{error}{approval} },
        expect => $held },
      { cat => 'approval', name => 'approval: for other input',
        method => 'PATCH', path => $snow,
        body => '{"category":"network","priority":"1"}',
        headers => $ap->(sub { $A //= $_[0]->approval($_[0]->held) }),
        expect => { %$held, message => qr/other input/ } },
      { cat => 'approval', name => 'approval: same input, other spelling',
        method => 'PATCH', path => $snow,
        body => '{ "work_notes":"hostile", "priority":"2",'
              . '"category":"network" }',
        headers => $ap->(sub { $A }),
        expect => fwd(decision => 'ALLOW') },
      { cat => 'approval', name => 'approval: replayed',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $A }),
        expect => { %$held, message => qr/already been used/ } },
      { cat => 'approval', name => 'approval: another tenant\'s',
        method => 'PATCH', path => $snow, body => $snow_body,
        token => $beta, headers => $ap->(sub { $A }),
        expect => { %$held, tenant => 'beta' } },
      { cat => 'approval', name => 'approval: for another tool',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval({ %{ $_[0]->held },
            tool => 'slack.chat' }) }),
        expect => $held },
      { cat => 'approval', name => 'approval: for another action',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval({ %{ $_[0]->held },
            action => 'read' }) }),
        expect => $held },
      { cat => 'approval', name => 'approval: signed by the caller key',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            key => $_[0]->g->{auth_pem}) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: expired',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            claims => { iat => int(time()) - 7200,
                        exp => int(time()) - 3600 }) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: wrong typ',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            header => { typ => 'JWT' }) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: alg none',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub {
            my $t = $_[0]->approval_signed($_[0]->held);
            my ($h, $p) = split /\./, $t;
            b64url('{"alg":"none","typ":"foxgov-approval+jwt"}') . ".$p." }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: the caller token as approval',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->good }), expect => $bad_appr },
      { cat => 'approval', name => 'approval: truncated',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { substr($_[0]->approval($_[0]->held), 0, 60) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: 20000 bytes',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { 'A' x 20000 }), expect => $bad_appr },
      # single use needs an id to remember: an approval without a usable
      # jti is no approval
      (map { my ($n, $jti) = @$_; {
        cat => 'approval', name => "approval: jti $n",
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            claims => { jti => $jti }) }),
        expect => $bad_appr } }
        [ 'missing', undef ], [ 'a number', 7 ], [ 'empty', '' ],
        [ 'of 5000 characters', 'j' x 5000 ], [ 'an array', [ 'a' ] ]),
      { cat => 'approval', name => 'approval: exp a string',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            claims => { exp => '9999999999' }) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: no exp',
        method => 'PATCH', path => $snow, body => $snow_body,
        headers => $ap->(sub { $_[0]->approval_signed($_[0]->held,
            claims => { exp => undef }) }),
        expect => $bad_appr },
      { cat => 'approval', name => 'approval: on a model call, ignored',
        body => chat(), headers => $ap->(sub { 'garbage' }),
        expect => fwd() };

    # a write with no body: its approval is bound to "no input" and the
    # tool, not to the path (docs/security.md "Known limits")
    my $del = "/api/now/table/incident/$SYS";
    my $D;
    push @t,
      { cat => 'approval', name => 'approval: a DELETE without body is held',
        method => 'DELETE', path => $del,
        check => sub { $_[1]{held_del} = $_[0]{json}{error}{approval} },
        expect => $held },
      { cat => 'approval', name => 'approval: a no-body approval on a body',
        method => 'DELETE', path => $del, body => '{"category":"x"}',
        headers => $ap->(sub { $D //= $_[0]->approval($_[0]{held_del}) }),
        expect => { %$held, message => qr/other input/ } },
      { cat => 'approval', name => 'approval: a no-body approval on a PATCH '
        . 'without body', method => 'PATCH', path => $del,
        headers => $ap->(sub { $D }),
        expect => rec(400, 'schema_violation',
                      message => qr/needs a JSON body/) },
      { cat => 'approval', name => 'approval: bound to the input, not the '
        . 'path: used on another incident', method => 'DELETE',
        path => '/api/now/table/incident/e8caedcbc0a80164017df472f39eaed1',
        headers => $ap->(sub { $D }),
        expect => { %{ fwd() }, status => 204 } },
      { cat => 'approval', name => 'approval: the no-body approval replayed',
        method => 'DELETE', path => $del, headers => $ap->(sub { $D }),
        expect => { %$held, message => qr/already been used/ } };

    # clients that leave halfway (nothing decided, nothing forwarded, the
    # worker goes on: checked after all cases)
    push @t,
      { cat => 'abort', name => 'abort: in the headers', abort => 30,
        body => chat(), expect => { evidence => 'none' } },
      { cat => 'abort', name => 'abort: in the body', abort => -20,
        body => chat(content => 'a' x 2000), expect => { evidence => 'none' } },
      { cat => 'abort', name => 'abort: in a chunked body', abort => -10,
        body => 'x', chunked => [ 'a' x 100, 'b' x 100 ],
        expect => { evidence => 'none' } },
      { cat => 'abort', name => 'abort: in a held write\'s body',
        abort => -5, method => 'PATCH', path => $del,
        body => '{"category":"network"}', expect => { evidence => 'none' } };

    # ------------------------------------ the policy engine, slowed

    push @t,
      { cat => 'regex', name => 'regex: (a|aa)+ over 25 a and !',
        body => chat(extra => ',"user":"' . ('a' x 25) . '!"'),
        expect => rec(503, 'policy_error', gate => [ policy => 'error' ],
                      within => 2) },
      { cat => 'regex', name => 'regex: (a|aa)+ over 4000 a and !',
        body => chat(extra => ',"user":"' . ('a' x 4000) . '!"'),
        expect => rec(503, 'policy_error', gate => [ policy => 'error' ],
                      within => 2) },
      { cat => 'regex', name => 'regex: (\w+\s?)* over 4000 word '
        . 'characters and !',
        body => chat(extra => ',"metadata":{"tag":"' . ('ab' x 2000)
                     . '!"}'),
        expect => rec(503, 'policy_error', gate => [ policy => 'error' ],
                      within => 2) },
      { cat => 'regex', name => 'regex: a body string over 4096 the '
        . 'rules read', body => chat(extra => ',"user":"' . ('a' x 4097)
                                      . '"'),
        expect => none(400, 'invalid_request',
                       message => qr/cannot be recorded/) },
      { cat => 'regex', name => 'control: regex below its bound',
        body => chat(extra => ',"user":"' . ('a' x 10) . '!"'),
        expect => fwd() };

    return @t;
};
