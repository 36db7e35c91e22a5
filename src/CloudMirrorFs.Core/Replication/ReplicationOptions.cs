namespace CloudMirrorFs.Replication;

/// <summary>How replicators pace themselves. Defaults suit a long, lossy internet link.</summary>
public sealed record ReplicationOptions
{
    /// <summary>Independent writes in flight at once to one facet.</summary>
    public int Window { get; init; } = 16;

    /// <summary>
    /// Records read from the queue per batch (one commit each on an object store). A commit costs about two round
    /// trips beyond its uploads, so on a long link a batch must be large to keep the link busy; <see cref="BatchBytes"/>
    /// caps the data, and rules for writes of 16 KiB and more. Small writes need the records: a batch of 4,096 random
    /// 4 KiB writes folds about four into each block it touches, one object and one extent for them, where 1,024 left
    /// about one, and a block then reached the compaction limit (8 extent objects, read back and sent whole) four
    /// times as often. Measured through the mount (5 s of random 4 KiB writes, then drain, folder remote): the drain
    /// took 10 s instead of 28–37 s on ext4, 0.3 s instead of 3 s on tmpfs.
    /// </summary>
    public int BatchRecords { get; init; } = 4096;

    /// <summary>Bytes of data read from the queue per batch, at most; the replicator uses a quarter of <c>queue.memoryLimit</c> when that is less.</summary>
    public long BatchBytes { get; init; } = 64L << 20;

    /// <summary>First retry delay after a failure.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The cap on the retry delay.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a replicator lets a short batch grow before sending it (a group commit, as a journal batches its
    /// fsyncs): a trickle of small changes goes out as one batch and one facet commit instead of one each, which
    /// spares the CPU and the disk that writers share with it, and on a cloud remote the requests each commit costs.
    /// Zero sends at once. A full batch never waits.
    /// 200 ms: a remote is asynchronous, so a trickle reaching it 200 ms later changes nothing a user sees, while each
    /// commit it saves is several fsyncs on a disk the writers' own fsyncs wait for. The mount bench's 4 KiB
    /// write+fsync with a folder remote on the same disk: 5 ms → 50 ms took the p50 from about 320 to 270 µs;
    /// 50 → 200 ms halved the p99 (medians of 15 runs, alternating: 1,361 → 680 µs) and left the p50 as it was
    /// (248 → 238 µs). A trickle to S3 costs 5 commits a second instead of 20.
    /// </summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// A remote's bulk work (writing a folder remote's objects) runs on threads whose copies take turns on all cores
    /// but one (<see cref="Storage.BackgroundWork"/>) while the replicator keeps up: while the oldest change of its batch
    /// is younger than this, the queue holds it in memory, and a local facet serves the drive. Past it, when the queue
    /// spills to disk, or when writes wait for the remote, the work runs on every core. Zero: always on every core.
    /// </summary>
    public TimeSpan BackgroundWhileWithin { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often an idle replicator looks at the queue without being woken.</summary>
    public TimeSpan IdlePoll { get; init; } = TimeSpan.FromMilliseconds(200);
}
