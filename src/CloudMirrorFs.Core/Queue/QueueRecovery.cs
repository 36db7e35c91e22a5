namespace CloudMirrorFs.Queue;

/// <summary>What replaying the queue at open found.</summary>
public sealed record QueueRecovery
{
    /// <summary>False when the previous run ended without closing the queue (SIGKILL, crash, power loss).</summary>
    public bool CleanShutdown { get; init; }

    /// <summary>Damaged or torn records, each named by file and offset.</summary>
    public IReadOnlyList<QueueCorruption> Corruptions { get; init; } = [];

    /// <summary>Records replayed from segment files.</summary>
    public long RecoveredRecords { get; init; }

    /// <summary>Locations whose in-memory records the previous run may have lost (its write-intent map).</summary>
    public IReadOnlyList<Location> LostLocations { get; init; } = [];

    /// <summary>True when the write-intent map itself was damaged: which locations were lost is unknown (a full resync is needed).</summary>
    public bool LostUnknown { get; init; }
}
