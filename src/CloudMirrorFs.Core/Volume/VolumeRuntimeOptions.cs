using CloudMirrorFs.Replication;

namespace CloudMirrorFs.Volume;

/// <summary>How an opened volume runs (not part of the config file).</summary>
public sealed record VolumeRuntimeOptions
{
    /// <summary>Start one replicator per remote facet at open. Off for tools that only inspect the queue.</summary>
    public bool Replicate { get; init; } = true;

    /// <summary>Replicator pacing.</summary>
    public ReplicationOptions Replication { get; init; } = new();
}
