#!/usr/bin/perl

# Responses as they pass the gateway: SSE streams reach the client chunk
# by chunk as the upstream sends them (the first event before the upstream
# ends), token usage is read from OpenAI (chat with include_usage,
# responses) and Anthropic streams and from JSON bodies, the response
# BlobRef is the hash of the bytes relayed, and the call record's outcome
# says how the call ended: completed, client_aborted, upstream_aborted,
# upstream_error, timeout.

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

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway qw(parse_response);

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $JSON = JSON::PP->new->utf8->canonical;

my $g = FoxGov::Test::Gateway->new(read_timeout => '1s', config => <<'EOF');
        location /dead/ {
            rewrite ^/dead(/.*)$ $1 break;
            foxgov_call model openai;
            proxy_pass http://127.0.0.1:%%PORT_8089%%;
        }

        location /fallback/ {
            rewrite ^/fallback(/.*)$ $1 break;
            foxgov_call model openai;
            error_page 502 = @sorry;
            proxy_pass http://127.0.0.1:%%PORT_8089%%;
        }

        location @sorry {
            return 503 "sorry\n";
        }
EOF
$g->start;
my $tok = $g->token;

# Send a request on a raw socket and read the response as it comes:
# returns {raw, t_head, t_first_event, t_end}, or stops after the first
# event when close_after_first is set.
sub stream {
    my ($path, $body, %o) = @_;

    my $json = $JSON->encode($body);
    my $raw = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nAuthorization: Bearer $tok\r\n"
            . "Content-Type: application/json\r\n"
            . join('', map { "$_->[0]: $_->[1]\r\n" } @{ $o{headers} || [] })
            . 'Content-Length: ' . length($json) . "\r\n\r\n$json";

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $g->nginx->port(8080), Timeout => 5) or die "connect: $!";
    my $t0 = time();
    syswrite $s, $raw;

    my $sel = IO::Select->new($s);
    my %r = (raw => '');
    my $deadline = $t0 + 15;
    while (time() < $deadline && $sel->can_read($deadline - time())) {
        my $n = sysread $s, my $buf, 65536;
        last unless $n;
        $r{raw} .= $buf;
        $r{t_head} //= time() - $t0 if $r{raw} =~ /\r\n\r\n/;
        if (!defined $r{t_first_event} && $r{raw} =~ /\r\n\r\n.*data: /s) {
            $r{t_first_event} = time() - $t0;
            if ($o{close_after_first}) {
                close $s;
                return \%r;
            }
        }
    }
    $r{t_end} = time() - $t0;
    close $s;

    my $p = parse_response($r{raw});
    $r{$_} = $p->{$_} for keys %$p;

    return \%r;
}

sub call_record {
    my ($r) = @_;
    my $exec = $r->{headers}{'foxgov-execution-id'};
    ($exec) = $r->{raw} =~ /FoxGov-Execution-Id: (\S+)/i unless $exec;
    my $rec = $g->wait_call_record($exec, 8);
    return $rec ? $rec->{record} : undef;
}

my $chat = { model => 'gpt-4o', stream => JSON::PP::true,
             stream_options => { include_usage => JSON::PP::true },
             messages => [ { role => 'user',
                             content => 'one two three four five six' } ] };

# ------------------------------------------------- passthrough timing

{
    my $r = stream('/v1/chat/completions', $chat,
                   headers => [ [ 'X-Mock-Chunk-Delay-Ms' => 250 ] ]);
    is($r->{status}, 200, 'stream: 200') or diag($r->{raw});
    like($r->{headers}{'content-type'}, qr{^text/event-stream},
         'stream: SSE');
    ok(defined $r->{t_first_event}, 'stream: an event arrived');
    cmp_ok($r->{t_end}, '>', 2.0, 'stream: the upstream took its time');
    cmp_ok($r->{t_first_event}, '<', $r->{t_end} - 1.5,
           'stream: the first event reached the client long before the '
           . 'upstream ended (not held back)');
    like($r->{body}, qr/data: \[DONE\]/, 'stream: relayed to the end');

    my $c = call_record($r);
    is($c->{outcome}, 'completed', 'stream: completed');
    ok($c->{stream}, 'stream: recorded as a stream');
    is($c->{response}{sha256}, sha256_hex($r->{body}),
       'stream: response BlobRef hashes the SSE bytes relayed');
    my ($last) = grep { /"usage":\{/ } $r->{body} =~ /^data: (\{.*\})$/mg;
    my $u = $JSON->decode($last)->{usage};
    is_deeply($c->{usage}, { input_tokens => $u->{prompt_tokens},
        output_tokens => $u->{completion_tokens},
        total_tokens => $u->{total_tokens} },
        'stream: usage from the include_usage chunk');
    is($c->{response_model}, 'gpt-4o-2024-08-06', 'stream: response_model');
}

# without include_usage the stream carries no usage: recorded as unknown
{
    my %b = %$chat;
    delete $b{stream_options};
    my $r = stream('/v1/chat/completions', \%b);
    my $c = call_record($r);
    is_deeply($c->{usage}, { input_tokens => undef, output_tokens => undef,
        total_tokens => undef }, 'stream without usage: nulls, not guesses');
}

# Anthropic messages stream
{
    my $r = stream('/anthropic/v1/messages', { model =>
        'claude-3-5-sonnet-20241022', max_tokens => 100, stream =>
        JSON::PP::true, messages => [ { role => 'user', content =>
        'summarize the incident please' } ] },
        headers => [ [ 'anthropic-version' => '2023-06-01' ] ]);
    is($r->{status}, 200, 'anthropic stream: 200') or diag($r->{raw});
    my $c = call_record($r);
    my ($in) = $r->{body} =~ /"input_tokens":(\d+)/;
    my @out = $r->{body} =~ /"output_tokens":(\d+)/g;
    is($c->{usage}{input_tokens}, $in, 'anthropic stream: input tokens');
    is($c->{usage}{output_tokens}, $out[-1],
       'anthropic stream: the last output_tokens');
    is($c->{usage}{total_tokens}, $in + $out[-1], 'anthropic stream: total');
    is($c->{outcome}, 'completed', 'anthropic stream: completed');
}

# OpenAI responses stream
{
    my $r = stream('/v1/responses', { model => 'gpt-4o', stream =>
        JSON::PP::true, input => 'classify this ticket' });
    is($r->{status}, 200, 'responses stream: 200') or diag($r->{raw});
    my $c = call_record($r);
    ok(defined $c->{usage}{input_tokens} && defined
       $c->{usage}{output_tokens}, 'responses stream: usage read')
        or diag(explain($c->{usage}));
    is($c->{endpoint}, 'responses', 'responses stream: endpoint');
}

# --------------------------------------------------------- aborts

{
    my $r = stream('/v1/chat/completions', $chat, close_after_first => 1,
                   headers => [ [ 'X-Mock-Chunk-Delay-Ms' => 200 ] ]);
    ok($r->{t_first_event}, 'client abort: got the first event, left');
    my $c = call_record($r);
    is($c->{outcome}, 'client_aborted', 'client abort: recorded as such')
        or diag(explain($c));
    ok($c->{response}, 'client abort: what was relayed is hashed');
}

{
    my $r = stream('/v1/chat/completions', $chat,
                   headers => [ [ 'X-Mock-Abort-After' => 2 ] ]);
    my $c = call_record($r);
    is($c->{outcome}, 'upstream_aborted',
       'upstream closes mid-stream: upstream_aborted') or diag(explain($c));
}

{
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        headers => [ 'X-Mock-Status' => 500 ], body => { model => 'gpt-4o',
        messages => [ { role => 'user', content => 'x' } ] });
    is($r->{status}, 500, 'upstream 500: relayed');
    my $c = call_record($r);
    is($c->{outcome}, 'upstream_error', 'upstream 500: upstream_error');
    is($c->{status}, 500, 'upstream 500: status');
}

{
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        headers => [ 'X-Mock-Delay-Ms' => 2500 ], body => { model => 'gpt-4o',
        messages => [ { role => 'user', content => 'x' } ] });
    is($r->{status}, 504, 'upstream too slow: 504');
    my $c = call_record($r);
    is($c->{outcome}, 'timeout', 'upstream too slow: timeout');
    ok(!defined $c->{response}, 'timeout: no upstream response body');
}

{
    my $r = $g->request(POST => '/dead/v1/chat/completions', token => $tok,
        body => { model => 'gpt-4o', messages => [ { role => 'user',
        content => 'x' } ] });
    is($r->{status}, 502, 'upstream unreachable: 502');
    my $c = call_record($r);
    is($c->{outcome}, 'upstream_error', 'unreachable: upstream_error');
}

# an internal redirect after the decision (error_page to an ungoverned
# location) keeps the call: its record is written, nothing is decided again
{
    my $r = $g->request(POST => '/fallback/v1/chat/completions',
        token => $tok, body => { model => 'gpt-4o', messages => [
        { role => 'user', content => 'x' } ] });
    is($r->{status}, 503, 'error_page after the decision: its answer');
    my $exec = $r->{headers}{'foxgov-execution-id'};
    ok($exec, 'error_page: the call keeps its FoxGov-Execution-Id');
    my $c = call_record($r);
    is($c && $c->{outcome}, 'upstream_error',
       'error_page: the call record is written');
    my @dec = grep { $_->{type} eq 'PolicyDecisionRecord' }
              $g->records_for($exec);
    is(scalar @dec, 1, 'error_page: decided once');
}

# a JSON response larger than the buffers (proxy_buffering off here, so
# many writes) is hashed whole and its usage read
{
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        headers => [ 'X-Mock-Body-Size' => 300000 ], body => { model =>
        'gpt-4o', messages => [ { role => 'user', content => 'big one' } ] });
    is($r->{status}, 200, 'large JSON: 200');
    my $c = call_record($r);
    is($c->{response}{size_bytes}, length $r->{body}, 'large JSON: size');
    is($c->{response}{sha256}, sha256_hex($r->{body}), 'large JSON: hash');
    is($c->{usage}{total_tokens}, $r->{json}{usage}{total_tokens},
       'large JSON: usage');
}

is($g->stop, 0, 'nginx stops cleanly');
my ($ok, @bad) = $g->nginx->error_log_ok();
ok($ok, 'no alerts') or diag(join "\n", @bad);

done_testing();
