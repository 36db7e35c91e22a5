namespace CloudMirrorFs.Queue;

/// <summary>A damaged or torn record found while replaying the queue: where it is and what it means.</summary>
/// <param name="File">The segment file.</param>
/// <param name="Offset">Byte offset of the damaged record in that file.</param>
/// <param name="Problem">What is wrong (checksum mismatch, torn record, bad header).</param>
/// <param name="LastGoodSeq">The last sequence number read intact before it (0 if none).</param>
/// <param name="TornTail">True when the damage is an incomplete record at the end of the newest segment: an append a crash cut short.</param>
public sealed record QueueCorruption(string File, long Offset, string Problem, long LastGoodSeq, bool TornTail)
{
    /// <inheritdoc />
    public override string ToString()
        => $"queue segment {File}, offset {Offset}: {Problem}" + (TornTail ? " (an append cut short by a crash)" : "")
           + $"; records after seq {LastGoodSeq} in this file are not replayed, the facets that needed them fall back to dirty-map resync";
}
