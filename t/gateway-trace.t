#!/usr/bin/perl

# W3C Trace Context at the gateway (DESIGN.md "Trace context",
# INV-INT-003): a valid traceparent is continued with a new span, an
# absent or invalid one starts a trace (and drops tracestate), a higher
# version is read by its 00 prefix; with "foxgov_trace require" an absent
# or invalid one is a 400 that is itself recorded with a trace.  Every
# record of a call carries the trace_id the upstream received.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $sid = '00f067aa0ba902b7';

my $body = { model => 'gpt-4o', messages => [ { role => 'user',
                                                content => 'trace me' } ] };

# Send with these trace headers; return (response, upstream headers,
# records of the call).
sub traced {
    my ($g, @h) = @_;
    $g->upstream->clear_log;
    my $r = $g->request(POST => '/v1/chat/completions', token => $g->token,
                        headers => \@h, body => $body);
    my $exec = $r->{headers}{'foxgov-execution-id'};
    $g->wait_call_record($exec);
    my ($req) = $g->upstream->requests;
    return ($r, $req ? $req->{headers} : {}, $g->records_for($exec));
}

{
    my $g = FoxGov::Test::Gateway->new;
    $g->start;

    # ---------------------------------------------------------- valid
    my ($r, $h, @recs) = traced($g,
        traceparent => "00-$tid-$sid-01", tracestate => 'vendor=abc,x=1');
    is($r->{status}, 200, 'valid: 200');
    my ($new) = ($h->{traceparent} // '') =~ /^00-\Q$tid\E-([0-9a-f]{16})-01$/;
    ok($new, 'valid: the trace is continued upstream');
    isnt($new, $sid, 'valid: with a new span id');
    is($h->{tracestate}, 'vendor=abc,x=1', 'valid: tracestate passes');
    is(scalar @recs, 3, 'valid: three records');
    for my $rec (@recs) {
        is($rec->{record}{trace}{trace_id}, $tid,
           "valid: $rec->{type} carries the trace_id");
        is($rec->{record}{trace}{parent_span_id}, $sid,
           "valid: $rec->{type} parent is the incoming span");
        is($rec->{record}{trace}{span_id}, $new,
           "valid: $rec->{type} span is the one sent upstream");
    }

    # flags: sampled kept, unsampled kept, reserved bits cleared
    ($r, $h) = traced($g, traceparent => "00-$tid-$sid-00");
    like($h->{traceparent}, qr/-00$/, 'unsampled flag kept');
    ($r, $h) = traced($g, traceparent => "00-$tid-$sid-ff");
    like($h->{traceparent}, qr/-01$/, 'reserved flags cleared');

    # a higher version is read by its 00 prefix
    ($r, $h, @recs) = traced($g,
        traceparent => "01-$tid-$sid-01-what-the-future-holds");
    like($h->{traceparent}, qr/^00-\Q$tid\E-[0-9a-f]{16}-01$/,
         'higher version: continued as 00');

    # --------------------------------------- absent or invalid: restart
    my @invalid = (
        [ 'absent' ],
        [ 'malformed', traceparent => 'not-a-traceparent' ],
        [ 'uppercase hex', traceparent => '00-' . uc($tid) . "-$sid-01" ],
        [ 'all-zero trace id', traceparent => '00-' . ('0' x 32)
                                              . "-$sid-01" ],
        [ 'all-zero span id', traceparent => "00-$tid-" . ('0' x 16)
                                             . '-01' ],
        [ 'version ff', traceparent => "ff-$tid-$sid-01" ],
        [ 'version 00 too long', traceparent => "00-$tid-$sid-01-x" ],
        [ 'short trace id', traceparent => '00-' . substr($tid, 1)
                                           . "-$sid-01" ],
        [ 'two traceparents', traceparent => "00-$tid-$sid-01",
                              traceparent => "00-$tid-$sid-01" ],
    );

    for my $case (@invalid) {
        my ($name, @h) = @$case;
        ($r, $h, @recs) = traced($g, @h, tracestate => 'vendor=abc');
        is($r->{status}, 200, "$name: served (the gateway is ingress)");
        my ($t2) = ($h->{traceparent} // '') =~ /^00-([0-9a-f]{32})-/;
        ok($t2 && $t2 ne $tid, "$name: a new trace is started");
        ok(!exists $h->{tracestate}, "$name: tracestate dropped");
        my %ids = map { $_->{record}{trace}{trace_id} => 1 } @recs;
        is_deeply([ keys %ids ], [ $t2 ],
                  "$name: every record carries the new trace_id");
        ok(!defined $recs[0]{record}{trace}{parent_span_id},
           "$name: no parent span");
    }

    # an invalid tracestate is dropped, the trace continued
    ($r, $h) = traced($g, traceparent => "00-$tid-$sid-01",
                      tracestate => 'UPPER=bad');
    like($h->{traceparent}, qr/^00-\Q$tid\E-/, 'bad tracestate: continued');
    ok(!exists $h->{tracestate}, 'bad tracestate: dropped');

    is($g->stop, 0, 'nginx stops cleanly');
    ok(scalar $g->nginx->error_log_ok(), 'no alerts');
}

# --------------------------------------------- foxgov_trace require

{
    my $g = FoxGov::Test::Gateway->new(trace => 'require');
    $g->start;

    for my $case ([ 'absent' ],
                  [ 'malformed', traceparent => 'garbage' ],
                  [ 'all-zero', traceparent => '00-' . ('0' x 32)
                                               . "-$sid-01" ]) {
        my ($name, @h) = @$case;
        my ($r, $h, @recs) = traced($g, @h);
        is($r->{status}, 400, "require, $name: 400");
        is($r->{json}{error}{code}, 'invalid_traceparent',
           "require, $name: code");
        ok(!%$h, "require, $name: nothing forwarded");
        is(scalar @recs, 3, "require, $name: the refusal is recorded");
        my %ids = map { $_->{record}{trace}{trace_id} => 1 } @recs;
        is(scalar keys %ids, 1, "require, $name: under one trace_id");
        my ($dec) = grep { $_->{type} eq 'PolicyDecisionRecord' } @recs;
        is($dec->{record}{decision}, 'DENY', "require, $name: DENY");
    }

    my ($r, $h) = traced($g, traceparent => "00-$tid-$sid-01");
    is($r->{status}, 200, 'require, valid: 200');
    like($h->{traceparent}, qr/^00-\Q$tid\E-/, 'require, valid: continued');

    is($g->stop, 0, 'nginx stops cleanly');
    ok(scalar $g->nginx->error_log_ok(), 'no alerts');
}

done_testing();
