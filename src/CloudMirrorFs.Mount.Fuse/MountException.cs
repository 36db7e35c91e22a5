namespace CloudMirrorFs.Mount;

/// <summary>The drive could not be mounted; the message names the mount point and what to do.</summary>
public sealed class MountException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MountException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public MountException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception with no message.</summary>
    public MountException()
    {
    }
}
