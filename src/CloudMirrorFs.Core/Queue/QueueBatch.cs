using System.Collections;

namespace CloudMirrorFs.Queue;

/// <summary>
/// The records <see cref="TransactionQueue.Read"/> returns for one facet. Each record whose bytes live in the queue's
/// memory is this batch's own copy of the entry, with its own hold on those bytes (<see cref="Transaction.Owner"/>),
/// taken under the queue's lock: the bytes stay as they are until the batch is disposed, even when the queue lets the
/// entries go meanwhile (a cursor released under the <c>unsync</c> policy, or a facet taken offline, while its
/// replicator is still applying the batch).
/// </summary>
public sealed class QueueBatch : IReadOnlyList<Transaction>, IDisposable
{
    private readonly List<Transaction> _records;
    private int _disposed;

    internal QueueBatch(List<Transaction> records) => _records = records;

    /// <inheritdoc />
    public Transaction this[int index] => _records[index];

    /// <inheritdoc />
    public int Count => _records.Count;

    /// <inheritdoc />
    public IEnumerator<Transaction> GetEnumerator() => _records.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Gives back the batch's holds (once); a facet that kept some of the bytes holds them on its own.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        foreach (Transaction t in _records)
        {
            t.Owner?.Release();
            t.Owner = null;
        }
    }
}
