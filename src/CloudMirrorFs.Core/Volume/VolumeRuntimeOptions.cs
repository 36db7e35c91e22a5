using CloudMirrorFs.Replication;

namespace CloudMirrorFs.Volume;

/// <summary>How an opened volume runs (not part of the config file).</summary>
public sealed record VolumeRuntimeOptions
{
    /// <summary>Start one replicator per remote facet at open. Off for tools that only inspect the queue.</summary>
    public bool Replicate { get; init; } = true;

    /// <summary>
    /// How often the activity log is trimmed (a whole-volume barrier, then the regions idle since dropped); sooner
    /// when it names many regions. Like the kernel's 30 s dirty expiry: what a restart compares again is at most
    /// about this old.
    /// </summary>
    public TimeSpan ActivityTrimPeriod { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Replicator pacing.</summary>
    public ReplicationOptions Replication { get; init; } = new();
}
