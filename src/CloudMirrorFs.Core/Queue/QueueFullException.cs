namespace CloudMirrorFs.Queue;

/// <summary>The queue reached <c>queue.diskLimit</c> and no facet could be released to make room.</summary>
public sealed class QueueFullException : IOException
{
    /// <summary>Creates the exception with a message naming the limit and what to do.</summary>
    public QueueFullException(string message) : base(message)
    {
    }
}
