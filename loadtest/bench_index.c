/* placeholder: replaced in this change */
int main(void) { return 0; }
