module github.com/mailgate/mailgate

go 1.26.8
