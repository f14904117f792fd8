#!/usr/bin/perl
# What Sisimai (the reference implementation, https://github.com/sisimai/p5-sisimai) finds in each message:
# perl -I P5_SISIMAI/lib sisimai_dump.pl SET_OF_EMAILS/maildir/bsd/*.eml > sisimai.json (needs JSON and
# Class::Accessor::Lite: apt-get install libjson-perl libclass-accessor-lite-perl).
use strict;
use warnings;
use Sisimai;
use JSON;

my $found = {};
for my $path (@ARGV) {
    my $facts = Sisimai->rise($path, 'delivered' => 1, 'vacation' => 1) || [];
    (my $name = $path) =~ s|.*/||;
    $found->{$name} = [
        map {
            {
                'recipient' => $_->{'recipient'}->address,
                'reason'    => $_->{'reason'},
                'status'    => $_->{'deliverystatus'},
                'replycode' => $_->{'replycode'} ? "$_->{'replycode'}" : '',
                'action'    => $_->{'action'},
                'feedbacktype' => $_->{'feedbacktype'},
            }
        } @$facts
    ];
}
# One message a line, so that a change of Sisimai's answer is a readable diff.
my $json = JSON->new->canonical;
print '{"sisimai": ', $json->encode("$Sisimai::VERSION"), ', "messages": {', "\n";
my @names = sort keys %$found;
for my $index (0 .. $#names) {
    print $json->encode($names[$index]), ': ', $json->encode($found->{ $names[$index] }), $index < $#names ? ",\n" : "\n";
}
print "}}\n";
