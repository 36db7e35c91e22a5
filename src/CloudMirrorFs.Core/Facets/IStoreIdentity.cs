namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet whose storage carries an identity made when that storage was first set up (an object store's
/// volume.json). The volume records it; another identity after an open means the storage was emptied or replaced
/// outside cmfs, so whatever the facet held before is gone and a full resync must send everything again.
/// </summary>
public interface IStoreIdentity
{
    /// <summary>The identity of the storage opened last; null before the first open.</summary>
    string? StoreIdentity { get; }

    /// <summary>
    /// The number of the newest image the storage holds (its commits are numbered in order); 0 before the first open.
    /// An open that finds a lower number than one seen before means commits were lost (deleted or damaged).
    /// </summary>
    long CommittedImage { get; }

    /// <summary>The queue position the newest image covers (its writer's numbering); 0 for an empty store.</summary>
    long CommittedQueueSeq { get; }

    /// <summary>
    /// Who wrote the newest commit the store held at its last open: the id of the queue that fed that cmfs; null for
    /// an empty store or one an older build wrote. Another id than this volume's queue means another cmfs (another
    /// state folder) wrote the store since: what this volume's queue still holds for it is older than what it has.
    /// </summary>
    string? LastWriter { get; }

    /// <summary>The id this volume stamps on its commits (its queue's id); set before the first commit.</summary>
    string? Writer { get; set; }
}
