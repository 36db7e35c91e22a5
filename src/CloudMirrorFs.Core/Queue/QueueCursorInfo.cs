namespace CloudMirrorFs.Queue;

/// <summary>One facet's view of the queue: the seed's per-facet head, tail and count.</summary>
/// <param name="Name">The facet name.</param>
/// <param name="Active">False when the facet was released (NotSynchronised: its dirty map covers what it missed).</param>
/// <param name="Head">The last sequence number committed on the facet: everything up to it is there.</param>
/// <param name="Tail">The last sequence number queued.</param>
/// <param name="Count">Transactions queued for the facet (Tail - Head when active).</param>
/// <param name="Bytes">Bytes of data in those transactions.</param>
/// <param name="OldestEnqueuedUtc">When the oldest of them was queued; null when none is waiting.</param>
public sealed record QueueCursorInfo(string Name, bool Active, long Head, long Tail, long Count, long Bytes, DateTime? OldestEnqueuedUtc);
