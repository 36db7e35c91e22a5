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

    /// <summary>
    /// Set when the cursor file was missing or damaged while records were kept: how far each remote had got is not
    /// known, so every cursor replays the records kept from the oldest. Says which file and what was done.
    /// </summary>
    public string? CursorsLost { get; init; }
}
