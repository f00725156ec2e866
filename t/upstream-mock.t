#!/usr/bin/perl

# The mock upstream (t/lib/FoxGov/Test/Upstream.pm) on its own, over raw
# sockets, no nginx: every route, its credential refusal, the stream
# shapes as SSE, the X-Mock-* controls, the request log, concurrency, and
# that stop leaves nothing running.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);

use FoxGov::Test::Nginx;
use FoxGov::Test::Upstream;

# Bounded: the whole file, whatever hangs.
$SIG{ALRM} = sub { die "upstream-mock.t: timed out\n" };
alarm 120;

my $json = JSON::PP->new->utf8->canonical;

my $t = FoxGov::Test::Nginx->new();    # for its temp dir and ports
my $port = $t->port(8081);
my $dir = $t->testdir();

my %K = (openai => 'sk-openai-test', azure_openai => 'azure-test-key',
         anthropic => 'sk-ant-test', servicenow => 'snow-test-token',
         slack => 'xoxb-slack-test');

my $up = FoxGov::Test::Upstream->new(port => $port,
    log => "$dir/upstream.log", keys => \%K);
is($up->start, $up, 'start returns the object');
ok($up->is_running, 'running');

###########################################################################
# a raw client

sub connect_up {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    $s->autoflush(1);
    return $s;
}

sub req_text {
    my ($method, $path, %o) = @_;
    my $v = $o{version} // '1.0';
    my $body = $o{body};
    $body = $json->encode($body) if ref $body;
    my $r = "$method $path HTTP/$v\r\nHost: mock\r\n";
    my @h = @{ $o{headers} || [] };
    for (my $i = 0; $i < @h; $i += 2) { $r .= "$h[$i]: $h[$i + 1]\r\n" }
    if (defined $body) {
        if ($o{chunked}) {
            $r .= "Transfer-Encoding: chunked\r\n\r\n";
            my @parts = $body =~ /(.{1,7})/gs;
            $r .= sprintf("%x\r\n%s\r\n", length, $_) for @parts;
            $r .= "0\r\n\r\n";
            return $r;
        }
        $r .= "Content-Type: application/json\r\n"
            unless grep { lc $_ eq 'content-type' } @h;
        $r .= "Content-Length: " . length($body) . "\r\n";
    }
    $r .= "Connection: close\r\n" if $v eq '1.1' && $o{close};
    return "$r\r\n" . ($body // '');
}

# Read everything until the server closes (or, with $until, until
# $until->($raw) is true): (raw, time to first byte).
sub read_all {
    my ($s, $timeout, $until) = @_;
    my $sel = IO::Select->new($s);
    my ($raw, $first, $t0) = ('', undef, time());
    my $deadline = $t0 + ($timeout // 10);
    while ((my $left = $deadline - time()) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $first //= time() - $t0;
        $raw .= $buf;
        last if $until && $until->($raw);
    }
    return ($raw, $first);
}

sub parse_response {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return {} unless defined $head;
    my ($line, @lines) = split /\r\n/, $head;
    my %h;
    for (@lines) {
        my ($n, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $n} = $v;
    }
    my ($status) = $line =~ m{^HTTP/1\.1 (\d{3}) };
    my $r = { status => $status, headers => \%h, raw_body => $body // '',
              complete => 1 };
    if (($h{'transfer-encoding'} // '') eq 'chunked') {
        my ($rest, $dec) = ($body // '', '');
        $r->{complete} = 0;
        while ($rest =~ s/\A([0-9a-f]+)\r\n//) {
            my $n = hex $1;
            if ($n == 0) { $r->{complete} = $rest eq "\r\n"; last }
            last if length($rest) < $n + 2;
            $dec .= substr($rest, 0, $n, '');
            $rest =~ s/\A\r\n//;
        }
        $r->{body} = $dec;
    } else {
        $r->{body} = $body // '';
        if (defined $h{'content-length'}) {
            $r->{complete} = length($r->{body}) == $h{'content-length'};
            $r->{body} = substr($r->{body}, 0, $h{'content-length'});
        }
    }
    $r->{json} = eval { $json->decode($r->{body}) }
        if ($h{'content-type'} // '') =~ /json/;
    return $r;
}

# One request on a fresh connection.  keepalive => 1 (with version 1.1)
# leaves out Connection: close, so streams come chunked; then the answer
# ends at its framing (or when the server closes).
sub call {
    my ($method, $path, %o) = @_;
    my $s = connect_up();
    print {$s} req_text($method, $path, %o, close => !$o{keepalive});
    my ($raw, $first) = read_all($s, $o{timeout}, $o{keepalive} ? sub {
        my $r = parse_response($_[0]);
        $r->{status} && $r->{complete}
            && ($r->{headers}{'transfer-encoding'}
                || defined $r->{headers}{'content-length'});
    } : undef);
    close $s;
    my $r = parse_response($raw);
    $r->{first_byte} = $first;
    return $r;
}

# SSE events: [{event, data (decoded JSON or the raw text)}]
sub sse {
    my ($body) = @_;
    my @ev;
    for my $block (split /\n\n/, $body) {
        next unless length $block;
        my %e;
        for (split /\n/, $block) {
            $e{event} = $1 if /^event: (.*)$/;
            $e{data} = $1 if /^data: (.*)$/;
        }
        $e{json} = eval { $json->decode($e{data}) }
            if defined $e{data} && $e{data} ne '[DONE]';
        push @ev, \%e;
    }
    return \@ev;
}

my @OA = (headers => ['Authorization' => "Bearer $K{openai}"]);
my @AN = ('x-api-key' => $K{anthropic}, 'anthropic-version' => '2023-06-01');
my @SN = ('Authorization' => "Bearer $K{servicenow}");
my @SL = ('Authorization' => "Bearer $K{slack}");

my $text = 'Please   summarize incident INC0010001: the email server is '
         . 'down in Berlin';
my $msgs = [ { role => 'system', content => 'You are a triage bot.' },
             { role => 'user', content => $text } ];
my $words = () = join(' ', map { $_->{content} } @$msgs) =~ /\S+/g;
(my $snip = substr($text, 0, 40)) =~ s/\s+/ /g;
$snip =~ s/ \z//;
my $answer = "Summary: $snip";
my $awords = () = $answer =~ /\S+/g;

###########################################################################
# health, framing, the log

{
    my $r = call('GET', '/mock/health');
    is($r->{status}, 200, 'health: 200');
    is($r->{body}, 'ok', 'health: ok');
    is($r->{headers}{connection}, 'close', 'HTTP/1.0: Connection: close');

    $up->clear_log;
    my $body = '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}';
    $r = call('POST', '/v1/chat/completions?a=1&b=%20', @OA,
        headers => [ Authorization => "Bearer $K{openai}",
                     'X-Dup' => 'one', 'X-Dup' => 'two' ],
        body => $body);
    is($r->{status}, 200, 'chat completion: 200');
    my @log = $up->requests;
    is(scalar @log, 1, 'one request logged');
    my $l = $log[0];
    is($l->{method}, 'POST', 'log: method');
    is($l->{path}, '/v1/chat/completions', 'log: path');
    is($l->{query}, 'a=1&b=%20', 'log: raw query');
    is($l->{http_version}, 'HTTP/1.0', 'log: version');
    is($l->{headers}{'x-dup'}, 'one, two', 'log: repeated header joined');
    is($l->{headers}{authorization}, "Bearer $K{openai}",
        'log: lowercase names');
    is($l->{body}, $body, 'log: body');
    is($l->{body_sha256}, sha256_hex($body), 'log: body_sha256');
    is($up->last_request->{path}, '/v1/chat/completions', 'last_request');

    # a chunked request body, with non-ASCII bytes
    $up->clear_log;
    my $nb = $json->encode({ model => 'gpt-4o-mini', messages => [
        { role => 'user', content => "caf\x{e9} \x{1F98A} ok" } ] });
    $r = call('POST', '/v1/chat/completions', @OA, version => '1.1',
        chunked => 1, body => $nb);
    is($r->{status}, 200, 'chunked request body: 200');
    $l = $up->last_request;
    is($l->{body}, $nb, 'chunked body logged as the raw bytes');
    is($l->{body_sha256}, sha256_hex($nb), 'and hashed as such');
    is($r->{json}{model}, 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini mapped');
    like($r->{json}{choices}[0]{message}{content}, qr/^Summary: caf\x{e9}/,
        'UTF-8 content kept');

    # keep-alive: two HTTP/1.1 requests on one connection
    my $s = connect_up();
    my $b2 = '{"model":"m-echo","messages":[{"role":"user","content":"one"}]}';
    print {$s} req_text('POST', '/v1/chat/completions', @OA,
        version => '1.1', body => $b2);
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $got;
    while (!$got && $sel->can_read(5)) {
        sysread($s, $buf, 65536, length $buf) or last;
        if ($buf =~ /\r\n\r\n/ && $buf =~ /Content-Length: (\d+)/) {
            my $need = $1 + index($buf, "\r\n\r\n") + 4;
            $got = length($buf) >= $need;
        }
    }
    my $r1 = parse_response($buf);
    is($r1->{status}, 200, 'keep-alive: first answer');
    is($r1->{headers}{connection}, 'keep-alive', 'keep-alive: kept');
    ok(defined $r1->{headers}{'content-length'}, 'JSON: Content-Length');
    is($r1->{json}{model}, 'm-echo', 'unknown model echoed');
    print {$s} req_text('POST', '/v1/chat/completions', @OA,
        version => '1.1', body => $b2, close => 1);
    my ($raw2) = read_all($s, 5);
    close $s;
    my $r2 = parse_response($raw2);
    is($r2->{status}, 200, 'keep-alive: second answer on one connection');
    is($r2->{headers}{connection}, 'close', 'then Connection: close');

    # a request that is not HTTP
    $s = connect_up();
    print {$s} "HELLO\r\n\r\n";
    my ($raw3) = read_all($s, 5);
    like($raw3, qr{^HTTP/1\.1 400 }, 'garbage: 400');
}

###########################################################################
# OpenAI

{
    my $r = call('POST', '/v1/chat/completions', @OA,
        body => { model => 'gpt-4o', messages => $msgs });
    is($r->{status}, 200, 'openai chat: 200');
    like($r->{headers}{'content-type'}, qr{^application/json},
        'openai chat: JSON');
    like($r->{headers}{'x-request-id'}, qr/^req_[0-9a-f]{32}$/,
        'openai chat: x-request-id');
    my $j = $r->{json};
    like($j->{id}, qr/^chatcmpl-\w+$/, 'id');
    is($j->{object}, 'chat.completion', 'object');
    like($j->{created}, qr/^\d{10}$/, 'created');
    is($j->{model}, 'gpt-4o-2024-08-06', 'gpt-4o answers as its snapshot');
    like($j->{system_fingerprint}, qr/^fp_/, 'system_fingerprint');
    my $c = $j->{choices}[0];
    is($c->{index}, 0, 'choice index');
    is($c->{message}{role}, 'assistant', 'assistant');
    is($c->{message}{content}, $answer, 'deterministic content');
    ok(exists $c->{logprobs} && !defined $c->{logprobs}, 'logprobs null');
    is($c->{finish_reason}, 'stop', 'finish_reason');
    is($j->{usage}{prompt_tokens}, $words + 7, 'prompt_tokens');
    is($j->{usage}{completion_tokens}, $awords, 'completion_tokens');
    is($j->{usage}{total_tokens}, $words + 7 + $awords, 'total_tokens');

    my $r2 = call('POST', '/v1/chat/completions', @OA,
        body => { model => 'gpt-4o', messages => $msgs });
    is($r2->{json}{choices}[0]{message}{content}, $answer,
        'same request, same content');

    # streams, HTTP/1.1 (chunked) and HTTP/1.0 (close-delimited)
    for my $v ('1.1', '1.0') {
        my $s = connect_up();
        print {$s} req_text('POST', '/v1/chat/completions', @OA,
            version => $v, body => { model => 'gpt-4o', messages => $msgs,
                stream => JSON::PP::true,
                stream_options => { include_usage => JSON::PP::true } });
        # HTTP/1.1 without Connection: close: read until the last chunk
        my ($raw, $sel) = ('', IO::Select->new($s));
        while ($sel->can_read(5)) {
            sysread($s, $raw, 65536, length $raw) or last;
            last if $v eq '1.1' && $raw =~ /\r\n0\r\n\r\n\z/;
        }
        close $s;
        my $r = parse_response($raw);
        is($r->{status}, 200, "chat stream $v: 200");
        like($r->{headers}{'content-type'}, qr{^text/event-stream},
            "chat stream $v: event-stream");
        if ($v eq '1.1') {
            is($r->{headers}{'transfer-encoding'}, 'chunked', '1.1: chunked');
            ok($r->{complete}, '1.1: ends with the last chunk');
        } else {
            ok(!defined $r->{headers}{'transfer-encoding'}, '1.0: unframed');
            ok(!defined $r->{headers}{'content-length'}, '1.0: no length');
            is($r->{headers}{connection}, 'close', '1.0: close');
        }
        my $ev = sse($r->{body});
        is($ev->[-1]{data}, '[DONE]', "$v: ends with [DONE]");
        my @j = map { $_->{json} } @$ev[0 .. $#$ev - 1];
        is(scalar(grep { !$_ } @j), 0, "$v: every other event is JSON");
        is($j[0]{object}, 'chat.completion.chunk', "$v: chunk object");
        is_deeply($j[0]{choices}[0]{delta},
            { role => 'assistant', content => '', refusal => undef },
            "$v: first delta");
        my @d = map { $_->{choices}[0]{delta}{content} }
            @j[1 .. $#j - 2];
        is(scalar @d, $awords, "$v: one chunk per word");
        is(join('', @d), $answer, "$v: deltas make the answer");
        is($j[-2]{choices}[0]{finish_reason}, 'stop', "$v: finish chunk");
        is_deeply($j[-1]{choices}, [], "$v: usage chunk has no choices");
        is($j[-1]{usage}{prompt_tokens}, $words + 7, "$v: usage prompt");
        is($j[-1]{usage}{completion_tokens}, $awords, "$v: usage completion");
        is(scalar(grep { $_->{id} ne $j[0]{id} } @j), 0, "$v: one id");
    }

    my $r3 = call('POST', '/v1/chat/completions', @OA,
        body => { model => 'gpt-4o', messages => $msgs, stream => \1 });
    my $ev = sse($r3->{body});
    ok(!grep({ $_->{json} && exists $_->{json}{usage} } @$ev),
        'no include_usage: no usage member');
    is($ev->[-2]{json}{choices}[0]{finish_reason}, 'stop',
        'finish chunk last before [DONE]');

    # responses
    my $in = 'Classify incident INC0010002 please';
    my $rw = () = $in =~ /\S+/g;
    my $ra = "Summary: $in";
    my $raw_ = () = $ra =~ /\S+/g;
    $r = call('POST', '/v1/responses', @OA,
        body => { model => 'gpt-4o', input => $in });
    is($r->{status}, 200, 'responses: 200');
    $j = $r->{json};
    is($j->{object}, 'response', 'responses: object');
    like($j->{id}, qr/^resp_/, 'responses: id');
    is($j->{status}, 'completed', 'responses: status');
    is($j->{output}[0]{type}, 'message', 'output message');
    is($j->{output}[0]{content}[0]{type}, 'output_text', 'output_text');
    is($j->{output}[0]{content}[0]{text}, $ra, 'responses: text');
    is($j->{usage}{input_tokens}, $rw + 7, 'responses: input_tokens');
    is($j->{usage}{output_tokens}, $raw_, 'responses: output_tokens');
    is($j->{usage}{total_tokens}, $rw + 7 + $raw_, 'responses: total');

    $r = call('POST', '/v1/responses', @OA, version => '1.1', keepalive => 1,
        body => { model => 'gpt-4o', stream => \1,
                  input => [ { role => 'user', content => $in } ] });
    ok($r->{complete}, 'responses stream: complete');
    $ev = sse($r->{body});
    is(scalar(grep { !$_->{event} || !$_->{json}
                     || $_->{json}{type} ne $_->{event} } @$ev), 0,
        'every event: "event: X" and data.type X');
    is($ev->[0]{event}, 'response.created', 'first: response.created');
    is($ev->[-1]{event}, 'response.completed', 'last: response.completed');
    my @deltas = map { $_->{json}{delta} }
        grep { $_->{event} eq 'response.output_text.delta' } @$ev;
    is(join('', @deltas), $ra, 'deltas make the text');
    is($ev->[-1]{json}{response}{usage}{output_tokens}, $raw_,
        'completed carries usage');
    is_deeply([ map { $_->{json}{sequence_number} } @$ev ],
        [ 0 .. $#$ev ], 'sequence numbers');

    # embeddings
    $r = call('POST', '/v1/embeddings', @OA, body => {
        model => 'text-embedding-3-small', input => ['a b', 'c'],
        dimensions => 4 });
    is($r->{status}, 200, 'embeddings: 200');
    $j = $r->{json};
    is($j->{object}, 'list', 'embeddings: list');
    is(scalar @{ $j->{data} }, 2, 'one per input');
    is($j->{data}[1]{index}, 1, 'index');
    is($j->{data}[0]{object}, 'embedding', 'embedding object');
    is(scalar @{ $j->{data}[0]{embedding} }, 4, 'dimensions');
    is(scalar(grep { !/^-?\d+(?:\.\d+)?(?:e-?\d+)?$/i }
        @{ $j->{data}[0]{embedding} }), 0, 'floats');
    is($j->{model}, 'text-embedding-3-small', 'model');
    is_deeply($j->{usage}, { prompt_tokens => 3, total_tokens => 3 },
        'usage');

    # refusals
    $r = call('POST', '/v1/chat/completions', body => {});
    is($r->{status}, 401, 'openai: no key: 401');
    is($r->{json}{error}{code}, 'invalid_api_key', 'no key: invalid_api_key');
    like($r->{json}{error}{message}, qr/didn't provide an API key/,
        'no key: message');
    $r = call('POST', '/v1/chat/completions', body => {},
        headers => [ Authorization => 'Bearer sk-wrong-key-1234' ]);
    is($r->{status}, 401, 'openai: wrong key: 401');
    is_deeply([ sort keys %{ $r->{json}{error} } ],
        [qw(code message param type)], 'OpenAI error shape');
    is($r->{json}{error}{type}, 'invalid_request_error', 'error type');
    ok(!defined $r->{json}{error}{param}, 'param null');
    like($r->{json}{error}{message},
        qr/^Incorrect API key provided: sk-\*+1234\./,
        'wrong key named, masked');
    $r = call('POST', '/v1/chat/completions', @OA, body => '{"model":');
    is($r->{status}, 400, 'malformed JSON: 400');
    is($r->{json}{error}{type}, 'invalid_request_error',
        'malformed JSON: OpenAI shape');
    $r = call('POST', '/v1/chat/completions', @OA, body => { messages => [] });
    is($r->{status}, 400, 'no model: 400');
    $r = call('POST', '/v1/nothing', @OA, body => {});
    is($r->{status}, 404, 'unknown path: 404');
    ok($r->{json}{error}{message}, 'unknown path: OpenAI shape');
}

###########################################################################
# Azure OpenAI

{
    my $path = '/openai/deployments/gpt4o-eu/chat/completions'
             . '?api-version=2024-10-21';
    my $r = call('POST', $path, headers => ['api-key' => $K{azure_openai}],
        body => { messages => $msgs });
    is($r->{status}, 200, 'azure chat: 200');
    is($r->{json}{model}, 'gpt4o-eu', 'azure: model is the deployment');
    is($r->{json}{object}, 'chat.completion', 'azure: chat.completion');
    is($r->{json}{choices}[0]{message}{content}, $answer, 'azure: content');
    is($r->{json}{usage}{prompt_tokens}, $words + 7, 'azure: usage');
    ok($r->{headers}{'apim-request-id'}, 'azure: apim-request-id');
    ok($r->{headers}{'x-request-id'}, 'azure: x-request-id');

    $r = call('POST', $path, version => '1.1', keepalive => 1,
        headers => ['api-key' => $K{azure_openai}],
        body => { messages => $msgs, stream => \1 });
    my $ev = sse($r->{body});
    is($ev->[-1]{data}, '[DONE]', 'azure stream: [DONE]');
    ok($ev->[0]{json}{prompt_filter_results}, 'azure stream: filter chunk');
    is(join('', map { $_->{json}{choices}[0]{delta}{content} // '' }
        grep { $_->{json} && @{ $_->{json}{choices} } } @$ev), $answer,
        'azure stream: deltas');

    $r = call('POST', '/openai/deployments/emb/embeddings?api-version=x',
        headers => ['api-key' => $K{azure_openai}], body => { input => 'hi' });
    is($r->{status}, 200, 'azure embeddings: 200');
    is($r->{json}{model}, 'emb', 'azure embeddings: model');

    $r = call('POST', '/openai/deployments/gpt4o-eu/chat/completions',
        headers => ['api-key' => $K{azure_openai}], body => {});
    is($r->{status}, 404, 'azure: no api-version: 404');

    $r = call('POST', $path, headers => ['api-key' => 'nope'], body => {});
    is($r->{status}, 401, 'azure: wrong key: 401');
    is($r->{json}{error}{code}, '401', 'azure: error code "401"');
    like($r->{json}{error}{message}, qr/^Access denied due to invalid subscription key/,
        'azure: message');
    $r = call('POST', $path, headers => [Authorization => "Bearer $K{openai}"],
        body => {});
    is($r->{status}, 401, 'azure: Bearer is not api-key');
}

###########################################################################
# Anthropic

{
    my $body = { model => 'claude-3-5-sonnet-20241022', max_tokens => 100,
                 system => 'You are a triage bot.',
                 messages => [ { role => 'user', content => [
                     { type => 'text', text => $text } ] } ] };
    my $r = call('POST', '/v1/messages', headers => \@AN, body => $body);
    is($r->{status}, 200, 'anthropic: 200');
    like($r->{headers}{'request-id'}, qr/^req_/, 'anthropic: request-id');
    my $j = $r->{json};
    like($j->{id}, qr/^msg_/, 'id');
    is($j->{type}, 'message', 'type');
    is($j->{role}, 'assistant', 'role');
    is($j->{model}, 'claude-3-5-sonnet-20241022', 'model');
    is_deeply($j->{content}, [ { type => 'text', text => $answer } ],
        'content');
    is($j->{stop_reason}, 'end_turn', 'stop_reason');
    ok(exists $j->{stop_sequence} && !defined $j->{stop_sequence},
        'stop_sequence null');
    is($j->{usage}{input_tokens}, $words + 7, 'input_tokens');
    is($j->{usage}{output_tokens}, $awords, 'output_tokens');

    for my $v ('1.1', '1.0') {
        $r = call('POST', '/v1/messages', headers => \@AN, version => $v,
            keepalive => $v eq '1.1',
            body => { %$body, stream => \1 });
        ok($r->{complete}, "anthropic stream $v: complete");
        my $ev = sse($r->{body});
        my @names = map { $_->{event} } @$ev;
        is_deeply(\@names, [ 'message_start', 'content_block_start', 'ping',
            ('content_block_delta') x $awords, 'content_block_stop',
            'message_delta', 'message_stop' ], "$v: event sequence");
        is(scalar(grep { !$_->{json} || $_->{json}{type} ne $_->{event} }
            @$ev), 0, "$v: data.type is the event");
        is_deeply($ev->[0]{json}{message}{usage},
            { input_tokens => $words + 7, output_tokens => 1 },
            "$v: message_start usage");
        is(join('', map { $_->{json}{delta}{text} }
            grep { $_->{event} eq 'content_block_delta' } @$ev), $answer,
            "$v: text deltas");
        is_deeply($ev->[-2]{json}, { type => 'message_delta',
            delta => { stop_reason => 'end_turn', stop_sequence => undef },
            usage => { output_tokens => $awords } }, "$v: message_delta");
    }

    $r = call('POST', '/v1/messages', body => $body,
        headers => ['anthropic-version' => '2023-06-01']);
    is($r->{status}, 401, 'anthropic: no key: 401');
    is_deeply($r->{json}, { type => 'error', error => {
        type => 'authentication_error', message => 'invalid x-api-key' } },
        'anthropic: 401 body');
    $r = call('POST', '/v1/messages', body => $body,
        headers => ['x-api-key' => $K{anthropic}]);
    is($r->{status}, 400, 'anthropic: no anthropic-version: 400');
    is($r->{json}{error}{type}, 'invalid_request_error',
        'anthropic: invalid_request_error');
    $r = call('POST', '/v1/messages', headers => \@AN,
        body => { model => 'x', messages => [] });
    is($r->{status}, 400, 'anthropic: no max_tokens: 400');
}

###########################################################################
# ServiceNow

{
    my $id = '9d385017c611228701d22104cc95c371';
    my $r = call('GET', '/api/now/table/incident?sysparm_limit=10',
        headers => \@SN);
    is($r->{status}, 200, 'servicenow list: 200');
    is(ref $r->{json}{result}, 'ARRAY', 'list: result array');
    ok(scalar @{ $r->{json}{result} } >= 2, 'seeded incidents');
    is($r->{headers}{'x-total-count'}, scalar @{ $r->{json}{result} },
        'X-Total-Count');

    $r = call('GET', '/api/now/table/incident?sysparm_query='
        . 'number%3DINC0010001&sysparm_fields=number,sys_id',
        headers => \@SN);
    is_deeply($r->{json}{result}, [ { number => 'INC0010001',
        sys_id => $id } ], 'sysparm_query and sysparm_fields');

    $r = call('GET', "/api/now/table/incident/$id", headers => \@SN);
    is($r->{status}, 200, 'get one: 200');
    my $inc = $r->{json}{result};
    is($inc->{number}, 'INC0010001', 'number');
    ok(defined $inc->{$_}, "field $_") for qw(sys_id short_description
        description category priority assignment_group state);

    $r = call('GET', '/api/now/table/incident/0123456789abcdef0123456789abcdef',
        headers => \@SN);
    is($r->{status}, 404, 'unknown sys_id: 404');
    is_deeply($r->{json}, { error => { message => 'No Record found',
        detail => "Record doesn't exist or ACL restricts the record "
                . 'retrieval' }, status => 'failure' }, '404 body');

    $r = call('PATCH', "/api/now/table/incident/$id", headers => \@SN,
        body => { priority => 2, work_notes => 'triaged by foxgov' });
    is($r->{status}, 200, 'PATCH: 200');
    is($r->{json}{result}{priority}, '2', 'PATCH applied (as a string)');
    is($r->{json}{result}{work_notes}, 'triaged by foxgov', 'new field');
    is($r->{json}{result}{number}, 'INC0010001', 'rest kept');
    $r = call('GET', "/api/now/table/incident/$id", headers => \@SN);
    is($r->{json}{result}{priority}, '2', 'PATCH persists');
    is($up->incidents->{$id}{priority}, '2', 'incidents() sees it');

    $r = call('PUT', "/api/now/table/incident/$id", headers => \@SN,
        body => { state => '6' });
    is($r->{json}{result}{state}, '6', 'PUT applied');

    $r = call('PATCH', "/api/now/table/incident/$id", headers => \@SN,
        body => '{nope');
    is($r->{status}, 400, 'PATCH with bad JSON: 400');
    is($r->{json}{status}, 'failure', 'ServiceNow error shape');

    $r = call('POST', '/api/now/table/incident', headers => \@SN,
        body => { short_description => 'Printer on fire', priority => '1' });
    is($r->{status}, 201, 'POST: 201');
    like($r->{json}{result}{sys_id}, qr/^[0-9a-f]{32}$/, 'new sys_id');
    is($r->{json}{result}{number}, 'INC0010003', 'next number');
    is($r->{json}{result}{short_description}, 'Printer on fire', 'fields');
    my $new = $r->{json}{result}{sys_id};
    $r = call('GET', "/api/now/table/incident/$new", headers => \@SN);
    is($r->{status}, 200, 'the new incident can be read');

    $up->reset_state;
    $r = call('GET', "/api/now/table/incident/$new", headers => \@SN);
    is($r->{status}, 404, 'reset_state forgets it');

    $r = call('GET', "/api/now/table/incident/$id");
    is($r->{status}, 401, 'servicenow: no token: 401');
    is_deeply($r->{json}, { error => { message => 'User Not Authenticated',
        detail => 'Required to provide Auth information' },
        status => 'failure' }, 'servicenow: 401 body');
    $r = call('GET', "/api/now/table/incident/$id",
        headers => [ Authorization => 'Bearer wrong' ]);
    is($r->{status}, 401, 'servicenow: wrong token: 401');
}

###########################################################################
# Slack

{
    my $r = call('POST', '/api/chat.postMessage', headers => \@SL,
        body => { channel => 'C0123456789', text => 'INC0010001 triaged' });
    is($r->{status}, 200, 'slack: 200');
    is($r->{json}{ok}, JSON::PP::true, 'slack: ok');
    is($r->{json}{channel}, 'C0123456789', 'slack: channel');
    is($r->{json}{ts}, '1700000000.000100', 'slack: ts');
    is($r->{json}{message}{text}, 'INC0010001 triaged', 'slack: message');

    $r = call('POST', '/api/chat.postMessage', headers => \@SL,
        body => { text => 'no channel' });
    is_deeply($r->{json}, { ok => JSON::PP::false,
        error => 'channel_not_found' }, 'slack: missing channel');
    $r = call('POST', '/api/chat.postMessage',
        body => { channel => 'C1', text => 'x' });
    is($r->{status}, 200, 'slack: no token: 200');
    is_deeply($r->{json}, { ok => JSON::PP::false, error => 'invalid_auth' },
        'slack: invalid_auth');
}

###########################################################################
# X-Mock controls

{
    my $chat = { model => 'gpt-4o', messages => $msgs };

    my $r = call('POST', '/v1/chat/completions', body => $chat,
        headers => [ Authorization => "Bearer $K{openai}",
                     'X-Mock-Status' => 429 ]);
    is($r->{status}, 429, 'X-Mock-Status 429');
    is($r->{json}{error}{code}, 'rate_limit_exceeded', 'OpenAI 429 shape');
    ok($r->{headers}{'retry-after'}, '429: Retry-After');

    $r = call('POST', '/v1/chat/completions', body => $chat,
        headers => [ Authorization => "Bearer $K{openai}",
                     'X-Mock-Status' => 500 ]);
    is($r->{status}, 500, 'X-Mock-Status 500');
    is($r->{json}{error}{type}, 'server_error', 'OpenAI 500 shape');

    $r = call('POST', '/v1/messages', body => { model => 'c' },
        headers => [ @AN, 'X-Mock-Status' => 529 ]);
    is($r->{status}, 529, 'anthropic 529');
    is($r->{json}{error}{type}, 'overloaded_error', 'overloaded_error');

    $r = call('GET', '/api/now/table/incident',
        headers => [ @SN, 'X-Mock-Status' => 503 ]);
    is($r->{status}, 503, 'servicenow 503');
    is($r->{json}{status}, 'failure', 'servicenow error shape');

    $r = call('POST', '/openai/deployments/d/chat/completions?api-version=1',
        body => $chat, headers => [ 'api-key' => $K{azure_openai},
                                    'X-Mock-Status' => 400 ]);
    is($r->{status}, 400, 'azure 400');
    is($r->{json}{error}{code}, '400', 'azure error shape');

    $r = call('POST', '/v1/chat/completions', body => $chat,
        headers => [ 'X-Mock-Status' => 500 ]);
    is($r->{status}, 401, 'the credential is checked before X-Mock-Status');

    my $t0 = time();
    $r = call('POST', '/v1/chat/completions', body => $chat,
        headers => [ @{ $OA[1] }, 'X-Mock-Delay-Ms' => 400 ]);
    my $el = time() - $t0;
    is($r->{status}, 200, 'X-Mock-Delay-Ms: answered');
    ok($el >= 0.4 && $el < 3, "X-Mock-Delay-Ms 400: took $el s");

    my $stream = { %$chat, stream => \1 };
    my $nev = 1 + $awords + 1 + 1;    # role, words, finish, [DONE]

    $t0 = time();
    $r = call('POST', '/v1/chat/completions', body => $stream,
        version => '1.1', keepalive => 1, headers => [ @{ $OA[1] },
                                       'X-Mock-Chunk-Delay-Ms' => 150 ]);
    $el = time() - $t0;
    ok($r->{complete}, 'chunk delay: complete');
    is(scalar @{ sse($r->{body}) }, $nev, 'chunk delay: all events');
    ok($r->{first_byte} < 0.12, "head at once ($r->{first_byte} s)");
    ok($el >= 0.15 * $nev && $el < 0.15 * $nev + 2,
        "$nev events 150 ms apart, the first too: $el s");

    # abort after n events: HTTP/1.1 -- no last chunk
    $r = call('POST', '/v1/chat/completions', body => $stream,
        version => '1.1', keepalive => 1, headers => [ @{ $OA[1] },
                                       'X-Mock-Abort-After' => 2 ]);
    is($r->{status}, 200, 'abort 1.1: 200 first');
    ok(!$r->{complete}, 'abort 1.1: no terminating chunk');
    my $ev = sse($r->{body});
    is(scalar @$ev, 2, 'abort 1.1: two events');
    ok(!grep({ ($_->{data} // '') eq '[DONE]' } @$ev), 'abort: no [DONE]');

    $r = call('POST', '/v1/messages', version => '1.0',
        body => { model => 'c', max_tokens => 5, stream => \1,
                  messages => [ { role => 'user', content => $text } ] },
        headers => [ @AN, 'X-Mock-Abort-After' => 3 ]);
    $ev = sse($r->{body});
    is_deeply([ map { $_->{event} } @$ev ],
        [qw(message_start content_block_start ping)],
        'abort 1.0: three events, then the close');

    $r = call('POST', '/v1/chat/completions', body => $stream,
        version => '1.1', keepalive => 1, headers => [ @{ $OA[1] },
            'X-Mock-Abort-After' => 1, 'X-Mock-Abort-Mode' => 'reset' ]);
    is(scalar @{ sse($r->{body}) }, 1, 'abort with reset: one event read');
    ok(!$r->{complete}, 'abort with reset: incomplete');

    $r = call('POST', '/v1/chat/completions', body => $chat,
        headers => [ @{ $OA[1] }, 'X-Mock-Abort-After' => 10 ]);
    is(length $r->{raw_body}, 10, 'abort in JSON: 10 bytes of the body');
    ok(!$r->{complete}, 'abort in JSON: short of Content-Length');

    for my $size (5000, 200000) {
        $r = call('POST', '/v1/chat/completions', body => $chat,
            headers => [ @{ $OA[1] }, 'X-Mock-Body-Size' => $size ]);
        my $len = length $r->{body};
        ok(abs($len - $size) <= 16, "X-Mock-Body-Size $size: $len bytes");
        like($r->{json}{choices}[0]{message}{content}, qr/^\Q$answer\E x+$/,
            'padded content starts with the answer');
    }
    $r = call('POST', '/v1/messages',
        body => { model => 'c', max_tokens => 5,
                  messages => [ { role => 'user', content => $text } ] },
        headers => [ @AN, 'X-Mock-Body-Size' => 30000 ]);
    ok(abs(length($r->{body}) - 30000) <= 16, 'anthropic body size');
}

###########################################################################
# concurrency: two slow streams at once take one delay, not two

{
    my $stream = { model => 'gpt-4o', messages => $msgs, stream => \1 };
    my $nev = 1 + $awords + 1 + 1;
    my $delay = 0.1;
    my $one = $nev * $delay;

    my @s = map { connect_up() } 1 .. 2;
    my $t0 = time();
    print {$_} req_text('POST', '/v1/chat/completions', body => $stream,
        headers => [ @{ $OA[1] }, 'X-Mock-Chunk-Delay-Ms' => $delay * 1000 ])
        for @s;
    my %buf = map { ("$_" => '') } @s;
    my $sel = IO::Select->new(@s);
    my $deadline = $t0 + 10;
    while ($sel->count && time() < $deadline) {
        for my $fh ($sel->can_read($deadline - time())) {
            my $n = sysread($fh, $buf{"$fh"}, 65536, length $buf{"$fh"});
            if (!$n) { $sel->remove($fh); close $fh }
        }
    }
    my $el = time() - $t0;
    for my $i (0, 1) {
        my $ev = sse(parse_response($buf{"$s[$i]"})->{body});
        is($ev->[-1]{data} // '', '[DONE]', "stream $i finished");
    }
    ok($el < $one * 1.6, sprintf('two %.2f s streams at once: %.2f s',
        $one, $el));
    ok($el >= $one, 'and not faster than one');
}

###########################################################################
# stop: the server and its connection children are gone

{
    my $pid = $up->pid;
    my $s = connect_up();
    print {$s} req_text('POST', '/v1/chat/completions',
        body => { model => 'gpt-4o', messages => $msgs, stream => \1 },
        headers => [ @{ $OA[1] }, 'X-Mock-Chunk-Delay-Ms' => 5000 ]);
    my $sel = IO::Select->new($s);
    ok($sel->can_read(3), 'a slow stream has started');
    sysread($s, my $buf, 65536);

    my $t0 = time();
    $up->stop;
    ok(time() - $t0 < 3, 'stop is quick');
    ok(!$up->is_running, 'not running');
    ok(!kill(0, -$pid), 'the whole process group is gone');
    my $gone = 1;
    if ($sel->can_read(2)) {
        my $n = sysread($s, $buf, 65536);
        $gone = !$n;
    }
    ok($gone, 'the slow stream was cut');
    ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 1), 'the port is closed');

    # and it starts again on the same port
    $up->start;
    is(call('GET', '/mock/health')->{status}, 200, 'restarted');
    $up->stop;
}

# a taken port fails start at once
{
    my $hold = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Listen => 1, Proto => 'tcp');
    my $u = FoxGov::Test::Upstream->new(port => $hold->sockport,
        log => "$dir/other.log");
    ok(!eval { $u->start; 1 }, 'start dies on a taken port');
    like($@, qr/cannot listen/, 'saying so');
}

alarm 0;
done_testing();
