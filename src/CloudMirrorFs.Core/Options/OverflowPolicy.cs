namespace CloudMirrorFs.Options;

/// <summary>Seed 000's two answers to a full queue.</summary>
public enum OverflowPolicy
{
    /// <summary>The facet becomes NotSynchronised, its queue entries are released and its dirty map records what it missed.</summary>
    Unsync,
    /// <summary>Writers wait for queue space up to <c>overflowTimeout</c>, then the write fails.</summary>
    Block,
}
